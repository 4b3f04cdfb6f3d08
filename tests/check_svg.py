"""check_svg.py FILE BLOCKS [PAIRS] [--cells N] [--tiles N]: FILE parses as XML (an SVG), and
holds BLOCKS rects of class "block ..." (one per (member, step)) and, when given, PAIRS rects of
class "pair" (the attended (query, key) pairs), N heatmap cells, or N score tiles. Exit 0 when
all hold, 1 otherwise."""
import sys
import xml.etree.ElementTree as ET


def main(argv):
    path, rest = argv[1], argv[2:]
    want = {}
    for flag, key in (("--cells", "cell"), ("--tiles", "tile")):
        if flag in rest:
            i = rest.index(flag)
            want[key] = int(rest[i + 1])
            rest = rest[:i] + rest[i + 2:]
    root = ET.parse(path).getroot()
    if not root.tag.endswith("svg"):
        print(f"{path}: the root element is {root.tag}, not svg")
        return 1
    kinds = {}
    for el in root.iter():
        if el.tag.endswith("rect"):
            cls = (el.get("class") or "").split()
            key = cls[0] if cls else ""
            kinds[key] = kinds.get(key, 0) + 1
    if rest:
        want["block"] = int(rest[0])
    if len(rest) > 1:
        want["pair"] = int(rest[1])
    bad = [f"{k}: {kinds.get(k, 0)} rects, expected {n}" for k, n in want.items() if kinds.get(k, 0) != n]
    print(f"{path}: {'; '.join(bad) if bad else 'ok'} ({', '.join(f'{k or None} {n}' for k, n in sorted(kinds.items()))})")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
