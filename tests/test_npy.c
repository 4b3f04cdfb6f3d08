/* test_npy.c - the .npy reader and writer and ringattn_compare.

   - round trips (encode -> decode, save -> load) for every dtype, rank 0..4, strided and
     negative-stride views: the same bits come back;
   - hand-written headers NumPy may produce: versions 1.0 / 2.0 / 3.0, big-endian, '=' byte
     order, Fortran order, double quotes, no trailing comma, Python 2 'L' dims, keys in any
     order; bf16 as <u2 (and <i2); bool as |b1 (a mask), one byte an element;
   - every malformed input refused with its documented status and a message, never a crash:
     bad magic, every truncation of a valid file, bad versions, oversized or overlong headers,
     missing / unknown / repeated keys, unsupported and structured dtypes, negative, zero,
     overflowing and too many dimensions, truncated data, trailing bytes;
   - ringattn_compare: positions of the worst errors, counts, NaN/Inf rules, both policies,
     shape mismatch; ringattn_compare_format's report. */
#define RINGATTN_IMPLEMENTATION
#include "ringattn.h"
#include "test_util.h"

/* a .npy image from a header dict and data bytes, version major.0, padded like NumPy */
static size_t make_npy(unsigned char *buf, int major, const char *dict, const void *data, size_t nbytes)
{
    size_t pre = major == 1 ? 10 : 12, hl = strlen(dict), total = (pre + hl + 1 + 63) / 64 * 64, h = total - pre;
    memcpy(buf, "\x93NUMPY", 6);
    buf[6] = (unsigned char)major; buf[7] = 0;
    if (major == 1) { buf[8] = (unsigned char)(h & 255); buf[9] = (unsigned char)(h >> 8); }
    else { buf[8] = (unsigned char)(h & 255); buf[9] = (unsigned char)(h >> 8); buf[10] = 0; buf[11] = 0; }
    memcpy(buf + pre, dict, hl);
    memset(buf + pre + hl, ' ', h - hl);
    buf[total - 1] = '\n';
    if (nbytes) memcpy(buf + total, data, nbytes);
    return total + nbytes;
}

static int test_round_trip(int *failures)
{
    static const ringattn_dtype types[4] = { RINGATTN_F32, RINGATTN_F64, RINGATTN_F16, RINGATTN_BF16 };
    unsigned char raw[2 * 3 * 4 * 5 * 8], img[4096];
    char err[256];
    ringattn_config cfg = ringattn_default_config();
    int ti, nd;
    size_t i;
    cfg.error_detail = err; cfg.error_detail_size = sizeof err;
    for (i = 0; i < sizeof raw; i++) raw[i] = (unsigned char)(i * 29 + 7);
    for (ti = 0; ti < 4; ti++)
        for (nd = 0; nd <= 4; nd++) {
            ringattn_dtype t = types[ti];
            size_t es = t == RINGATTN_F64 ? 8 : t == RINGATTN_F32 ? 4 : 2, len = 0, need = 0;
            int64_t dims[4] = { 2, 3, 4, 5 }, a, n = 1;
            ringattn_tensor v;
            ringattn_npy_array arr;
            int st;
            for (a = nd; a < 4; a++) dims[a] = 1;
            for (a = 0; a < 4; a++) n *= dims[a];
            /* a view walking the raw bytes backwards along axis 0 (negative stride) */
            v = ringattn_tensor_bnhd(raw, t, dims[0], dims[1], dims[2], dims[3]);
            if (dims[0] > 1) { v.data = raw + (size_t)((dims[0] - 1) * v.stride[0]) * es; v.stride[0] = -v.stride[0]; }
            st = ringattn_npy_encode(&v, nd, NULL, 0, &need, &cfg);
            CHECK(st == RINGATTN_OK, "encode size query dtype %d rank %d: %d %s", (int)t, nd, st, err);
            CHECK(need % 64 == (size_t)(n * (int64_t)es) % 64 && need <= sizeof img, "size %zu", need);
            st = ringattn_npy_encode(&v, nd, img, need - 1, &len, &cfg);
            CHECK(st == RINGATTN_EOVERFLOW, "too small a buffer: %d", st);
            st = ringattn_npy_encode(&v, nd, img, sizeof img, &len, &cfg);
            CHECK(st == RINGATTN_OK && len == need, "encode: %d", st);
            st = ringattn_npy_decode(img, len, &arr, &cfg);
            CHECK(st == RINGATTN_OK, "decode dtype %d rank %d: %d %s", (int)t, nd, st, err);
            if (st != RINGATTN_OK) continue;
            CHECK(arr.info.ndim == nd && arr.info.dtype == t && arr.info.count == n && !arr.info.fortran_order,
                  "info: ndim %d dtype %d count %lld", arr.info.ndim, (int)arr.info.dtype, (long long)arr.info.count);
            CHECK(arr.info.data_offset % 64 == 0, "data offset %llu not 64-aligned", (unsigned long long)arr.info.data_offset);
            for (a = 0; a < 4; a++) CHECK(arr.t.shape[a] == dims[a], "shape[%d]", (int)a);
            {
                int64_t i0, i1, i2, i3, bad = 0;
                for (i0 = 0; i0 < dims[0]; i0++) for (i1 = 0; i1 < dims[1]; i1++)
                for (i2 = 0; i2 < dims[2]; i2++) for (i3 = 0; i3 < dims[3]; i3++) {
                    const unsigned char *x = (const unsigned char *)v.data +
                        (i0 * v.stride[0] + i1 * v.stride[1] + i2 * v.stride[2] + i3 * v.stride[3]) * (int64_t)es;
                    const unsigned char *y = (const unsigned char *)arr.t.data +
                        (i0 * arr.t.stride[0] + i1 * arr.t.stride[1] + i2 * arr.t.stride[2] + i3 * arr.t.stride[3]) * (int64_t)es;
                    if (memcmp(x, y, es)) bad++;
                }
                CHECK(bad == 0, "%lld elements changed in the round trip (dtype %d rank %d)", (long long)bad, (int)t, nd);
            }
            ringattn_npy_free(&arr);
            ringattn_npy_free(&arr);   /* idempotent */
        }
    /* writing a rank that drops a dimension longer than 1 is refused */
    {
        ringattn_tensor v = ringattn_tensor_bnhd(raw, RINGATTN_F32, 2, 3, 4, 5);
        size_t len;
        CHECK(ringattn_npy_encode(&v, 3, NULL, 0, &len, &cfg) == RINGATTN_ESHAPE, "rank 3 of a [2,3,4,5]");
        CHECK(ringattn_npy_encode(&v, 5, NULL, 0, &len, &cfg) == RINGATTN_ESHAPE, "rank 5");
#ifndef __cplusplus   /* in C++ an out-of-range enum value is itself undefined (UBSan -fsanitize=enum) */
        v.dtype = (ringattn_dtype)7;
        CHECK(ringattn_npy_encode(&v, 4, NULL, 0, &len, &cfg) == RINGATTN_EDTYPE, "bad dtype");
#endif
        CHECK(ringattn_npy_encode(NULL, 4, NULL, 0, &len, &cfg) == RINGATTN_ENULL, "NULL tensor");
    }
    return 0;
}

static int test_files(int *failures)
{
#ifdef __cplusplus
    const char *path = "test_npy_tmp_cpp.npy";   /* the C and C++ builds run in parallel */
#else
    const char *path = "test_npy_tmp.npy";
#endif
    double x[2 * 3 * 4], bits[2 * 3 * 4];
    char err[256];
    ringattn_config cfg = ringattn_default_config();
    ringattn_tensor t = ringattn_tensor_bnhd(x, RINGATTN_F64, 2, 3, 4, 1);
    ringattn_npy_array arr;
    int st, i;
    FILE *f;
    cfg.error_detail = err; cfg.error_detail_size = sizeof err;
    for (i = 0; i < 24; i++) x[i] = i * 0.1 - 1.0;
    x[5] = NAN; x[6] = -INFINITY;
    st = ringattn_npy_save(path, &t, 3, &cfg);
    CHECK(st == RINGATTN_OK, "save: %d %s", st, err);
    st = ringattn_npy_load(path, &arr, &cfg);
    CHECK(st == RINGATTN_OK, "load: %d %s", st, err);
    if (st == RINGATTN_OK) {
        CHECK(arr.info.ndim == 3 && arr.t.shape[3] == 1 && arr.t.dtype == RINGATTN_F64, "rank %d", arr.info.ndim);
        memcpy(bits, arr.t.data, sizeof bits);
        CHECK(memcmp(bits, x, sizeof x) == 0, "file round trip changed bits");
        ringattn_npy_free(&arr);
    }
    /* one byte too many, one too few */
    f = fopen(path, "ab"); if (f) { fputc(0, f); fclose(f); }
    st = ringattn_npy_load(path, &arr, &cfg);
    CHECK(st == RINGATTN_EFORMAT && strstr(err, "after"), "trailing byte: %d %s", st, err);
    {
        unsigned char img[1024]; size_t len = 0;
        ringattn_npy_encode(&t, 3, img, sizeof img, &len, NULL);
        f = fopen(path, "wb"); if (f) { fwrite(img, 1, len - 1, f); fclose(f); }
        st = ringattn_npy_load(path, &arr, &cfg);
        CHECK(st == RINGATTN_EFORMAT && strstr(err, "truncated"), "short data: %d %s", st, err);
        f = fopen(path, "wb"); if (f) { fwrite(img, 1, 9, f); fclose(f); }
        st = ringattn_npy_load(path, &arr, &cfg);
        CHECK(st == RINGATTN_EFORMAT, "9-byte file: %d %s", st, err);
        f = fopen(path, "wb"); if (f) fclose(f);
        st = ringattn_npy_load(path, &arr, &cfg);
        CHECK(st == RINGATTN_EFORMAT, "empty file: %d %s", st, err);
    }
    remove(path);
    st = ringattn_npy_load("no/such/dir/x.npy", &arr, &cfg);
    CHECK(st == RINGATTN_EIO && strstr(err, "cannot open"), "missing file: %d %s", st, err);
    st = ringattn_npy_save("no/such/dir/x.npy", &t, 3, &cfg);
    CHECK(st == RINGATTN_EIO, "unwritable path: %d %s", st, err);
    CHECK(ringattn_npy_load(NULL, &arr, &cfg) == RINGATTN_ENULL, "NULL path");
    CHECK(strcmp(ringattn_strerror(RINGATTN_EIO), ringattn_strerror(RINGATTN_EFORMAT)) != 0 &&
          strcmp(ringattn_strerror(RINGATTN_EFORMAT), ringattn_strerror(-999)) != 0, "strerror of the new codes");
    return 0;
}

/* headers NumPy (or an older or other writer) may produce */
static int test_accepted(int *failures)
{
    unsigned char img[1024], le[8], be[8];
    char err[256];
    ringattn_config cfg = ringattn_default_config();
    ringattn_npy_array arr;
    size_t len;
    int st;
    float f = 1.5f, g;
    uint16_t u;
    cfg.error_detail = err; cfg.error_detail_size = sizeof err;
    memcpy(le, &f, 4);   /* host order; the tests below assume a little-endian host for '<' data */
    be[0] = le[3]; be[1] = le[2]; be[2] = le[1]; be[3] = le[0];
    if (le[0] != 0) { printf("  (big-endian host: byte-order cases skipped)\n"); return 0; }

    len = make_npy(img, 1, "{'descr': '>f4', 'fortran_order': False, 'shape': (1,), }", be, 4);
    st = ringattn_npy_decode(img, len, &arr, &cfg);
    CHECK(st == RINGATTN_OK && arr.info.big_endian, "big-endian f4: %d %s", st, err);
    if (st == RINGATTN_OK) { memcpy(&g, arr.t.data, 4); CHECK(g == 1.5f, "swapped value %g", g); ringattn_npy_free(&arr); }

    len = make_npy(img, 2, "{\"shape\": (1L,), \"fortran_order\": False, \"descr\": \"=f4\"}", le, 4);
    st = ringattn_npy_decode(img, len, &arr, &cfg);
    CHECK(st == RINGATTN_OK && arr.info.version_major == 2, "v2, double quotes, 1L, any key order: %d %s", st, err);
    if (st == RINGATTN_OK) ringattn_npy_free(&arr);

    len = make_npy(img, 3, "{'descr':'<f4','fortran_order':False,'shape':(1)}", le, 4);
    st = ringattn_npy_decode(img, len, &arr, &cfg);
    CHECK(st == RINGATTN_OK && arr.info.version_major == 3 && arr.info.ndim == 1, "v3, compact, (1): %d %s", st, err);
    if (st == RINGATTN_OK) ringattn_npy_free(&arr);

    {   /* Fortran order: element (i, j) of a 2 x 3 array at i + 2 j */
        float d[6] = { 0, 1, 2, 3, 4, 5 };
        int64_t i, j;
        len = make_npy(img, 1, "{'descr': '<f4', 'fortran_order': True, 'shape': (2, 3), }", d, sizeof d);
        st = ringattn_npy_decode(img, len, &arr, &cfg);
        CHECK(st == RINGATTN_OK && arr.info.fortran_order, "Fortran order: %d %s", st, err);
        if (st == RINGATTN_OK) {
            for (i = 0; i < 2; i++) for (j = 0; j < 3; j++)
                CHECK(((float *)arr.t.data)[i * arr.t.stride[0] + j * arr.t.stride[1]] == (float)(i + 2 * j),
                      "F-order element (%d, %d)", (int)i, (int)j);
            ringattn_npy_free(&arr);
        }
    }
    {   /* bf16 bits in <u2 and <i2: 0x3FC0 = 1.5 */
        ringattn_tensor one;
        ringattn_compare_result r;
        double want = 1.5;
        u = 0x3FC0;
        one = ringattn_tensor_bnhd(&want, RINGATTN_F64, 1, 1, 1, 1);
        len = make_npy(img, 1, "{'descr': '<u2', 'fortran_order': False, 'shape': (), }", &u, 2);
        st = ringattn_npy_decode(img, len, &arr, &cfg);
        CHECK(st == RINGATTN_OK && arr.t.dtype == RINGATTN_BF16 && arr.info.ndim == 0, "bf16 <u2 scalar: %d %s", st, err);
        if (st == RINGATTN_OK) {
            CHECK(ringattn_compare(&arr.t, &one, NULL, NULL, &r, &cfg) == RINGATTN_OK && r.pass && r.max_abs == 0,
                  "bf16 0x3FC0 is 1.5");
            ringattn_npy_free(&arr);
        }
        len = make_npy(img, 1, "{'descr': '<i2', 'fortran_order': False, 'shape': (1,), }", &u, 2);
        st = ringattn_npy_decode(img, len, &arr, &cfg);
        CHECK(st == RINGATTN_OK && arr.t.dtype == RINGATTN_BF16, "bf16 <i2: %d %s", st, err);
        if (st == RINGATTN_OK) ringattn_npy_free(&arr);
        len = make_npy(img, 1, "{'descr': '<f2', 'fortran_order': False, 'shape': (1,), }", &u, 2);
        st = ringattn_npy_decode(img, len, &arr, &cfg);
        CHECK(st == RINGATTN_OK && arr.t.dtype == RINGATTN_F16, "f16: %d %s", st, err);
        if (st == RINGATTN_OK) ringattn_npy_free(&arr);
    }
    return 0;
}

typedef struct { const char *dict; int status; const char *says; } bad_case;

static int test_refused(int *failures)
{
    static const bad_case cases[] = {
        { "{'descr': '<i4', 'fortran_order': False, 'shape': (1,), }", RINGATTN_EFORMAT, "unsupported .npy dtype '<i4'" },
        { "{'descr': '|u2', 'fortran_order': False, 'shape': (1,), }", RINGATTN_EFORMAT, "unsupported" },   /* |u1: fp8 */
        { "{'descr': 'f4', 'fortran_order': False, 'shape': (1,), }", RINGATTN_EFORMAT, "unsupported" },
        { "{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (1,), }", RINGATTN_EFORMAT, "structured" },
        { "{'descr': '<f4', 'fortran_order': False, }", RINGATTN_EFORMAT, "'shape' is missing" },
        { "{'descr': '<f4', 'shape': (1,), }", RINGATTN_EFORMAT, "'fortran_order' is missing" },
        { "{'descr': '<f4', 'fortran_order': False, 'shape': (1,), 'extra': 1}", RINGATTN_EFORMAT, "unknown or repeated key 'extra'" },
        { "{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (1,)}", RINGATTN_EFORMAT, "repeated" },
        { "{'descr': '<f4', 'fortran_order': false, 'shape': (1,), }", RINGATTN_EFORMAT, "True or False" },
        { "{'descr': '<f4', 'fortran_order': False, 'shape': (-1,), }", RINGATTN_EFORMAT, "negative" },
        { "{'descr': '<f4', 'fortran_order': False, 'shape': (0, 3), }", RINGATTN_ESHAPE, "empty" },
        { "{'descr': '<f4', 'fortran_order': False, 'shape': (1, 1, 1, 1, 1), }", RINGATTN_ESHAPE, "rank > 4" },
        { "{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999999999999,), }", RINGATTN_EOVERFLOW, "64 bits" },
        { "{'descr': '<f4', 'fortran_order': False, 'shape': (4294967296, 4294967296), }", RINGATTN_EOVERFLOW, "overflows" },
        { "{'descr': '<f4', 'fortran_order': False, 'shape': (1 2), }", RINGATTN_EFORMAT, "',' or ')'" },
        { "{'descr': '<f4', 'fortran_order': False, 'shape': (1,), } x", RINGATTN_EFORMAT, "only padding" },
        { "{'descr': '<f4\\n', 'fortran_order': False, 'shape': (1,), }", RINGATTN_EFORMAT, "no escapes" },
        { "{'descr': '<f4, 'fortran_order': False, 'shape': (1,), }", RINGATTN_EFORMAT, "unsupported" },
        { "{'descr': '<f4', 'fortran_order': False, 'shape': (1,), ", RINGATTN_EFORMAT, "ends where" },
        { "['descr', '<f4']", RINGATTN_EFORMAT, "'{'" },
        { "{'descr': '<f4' 'fortran_order': False}", RINGATTN_EFORMAT, "',' or '}'" },
        { "{'descr': '<f4', 'fortran_order': False, 'shape': (1,", RINGATTN_EFORMAT, "" },
        { "{'averyveryverylongkeyname': 1}", RINGATTN_EFORMAT, "too long" },
    };
    unsigned char img[1024], good[256];
    float one = 1;
    char err[256];
    ringattn_config cfg = ringattn_default_config();
    ringattn_npy_array arr;
    ringattn_npy_info info;
    size_t i, len, glen;
    int st;
    cfg.error_detail = err; cfg.error_detail_size = sizeof err;
    for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        len = make_npy(img, 1, cases[i].dict, &one, 4);
        err[0] = 0;
        st = ringattn_npy_decode(img, len, &arr, &cfg);
        CHECK(st == cases[i].status && err[0] && strstr(err, cases[i].says),
              "header %s: status %d (want %d), message '%s' (want '%s')", cases[i].dict, st, cases[i].status, err,
              cases[i].says);
        if (st == RINGATTN_OK) ringattn_npy_free(&arr);
    }
    /* the preamble */
    glen = make_npy(good, 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (1,), }", &one, 4);
    memcpy(img, good, glen); img[0] = 'x';
    CHECK(ringattn_npy_decode(img, glen, &arr, &cfg) == RINGATTN_EFORMAT && strstr(err, "magic"), "bad magic: %s", err);
    memcpy(img, good, glen); img[6] = 4;
    CHECK(ringattn_npy_decode(img, glen, &arr, &cfg) == RINGATTN_EFORMAT && strstr(err, "version 4.0"), "v4: %s", err);
    memcpy(img, good, glen); img[7] = 1;
    CHECK(ringattn_npy_decode(img, glen, &arr, &cfg) == RINGATTN_EFORMAT && strstr(err, "version 1.1"), "v1.1: %s", err);
    memcpy(img, good, glen); img[8] = 0xff; img[9] = 0xff;
    CHECK(ringattn_npy_decode(img, glen, &arr, &cfg) == RINGATTN_EFORMAT && strstr(err, "truncated .npy header"),
          "header length past the end: %s", err);
    memcpy(img, good, glen); img[6] = 2; img[8] = 0; img[9] = 0; img[10] = 0; img[11] = 0x40;
    CHECK(ringattn_npy_parse_header(img, glen, &info, &cfg) == RINGATTN_EFORMAT && strstr(err, "limit"),
          "1 GiB header: %s", err);
    /* every truncation of a valid image, and one byte more */
    for (len = 0; len < glen; len++) {
        memcpy(img, good, len);
        err[0] = 0;
        st = ringattn_npy_decode(img, len, &arr, &cfg);
        CHECK(st == RINGATTN_EFORMAT && err[0], "truncated to %zu bytes: status %d '%s'", len, st, err);
    }
    memcpy(img, good, glen); img[glen] = 0;
    CHECK(ringattn_npy_decode(img, glen + 1, &arr, &cfg) == RINGATTN_EFORMAT && strstr(err, "after"),
          "a byte after the data: %s", err);
    CHECK(ringattn_npy_decode(good, glen, &arr, NULL) == RINGATTN_OK, "cfg may be NULL");
    ringattn_npy_free(&arr);
    CHECK(ringattn_npy_decode(NULL, 10, &arr, NULL) == RINGATTN_ENULL, "NULL buffer");
    CHECK(ringattn_npy_decode(good, glen, NULL, NULL) == RINGATTN_ENULL, "NULL arr");
    return 0;
}

static int test_compare(int *failures)
{
    double ref[2 * 3 * 4 * 2], got[2 * 3 * 4 * 2], base[2 * 3 * 4 * 2];
    ringattn_tensor G = ringattn_tensor_bnhd(got, RINGATTN_F64, 2, 3, 4, 2);
    ringattn_tensor R = ringattn_tensor_bnhd(ref, RINGATTN_F64, 2, 3, 4, 2);
    ringattn_tensor B = ringattn_tensor_bnhd(base, RINGATTN_F64, 2, 3, 4, 2);
    ringattn_compare_policy pol = ringattn_compare_default_policy(RINGATTN_F64);
    ringattn_compare_result r;
    char err[256], report[4096];
    ringattn_config cfg = ringattn_default_config();
    int i, st;
    size_t need;
    cfg.error_detail = err; cfg.error_detail_size = sizeof err;
    for (i = 0; i < 48; i++) { ref[i] = got[i] = base[i] = 0.25 * (i % 7) - 0.5; }
    st = ringattn_compare(&G, &R, NULL, NULL, &r, &cfg);
    CHECK(st == RINGATTN_OK && r.pass && r.max_abs == 0 && r.outside == 0 && r.count == 48 && r.policy == 'a',
          "identical: %d", st);
    /* element (b=1, n=2, h=3, d=0) = index ((1*3+2)*4+3)*2+0 = 46 off by 1e-3; (0,1,0,1) = 9 by 1e-9 */
    got[46] += 1e-3; got[9] += 1e-9;
    pol.atol = 1e-6; pol.rtol = 0;
    st = ringattn_compare(&G, &R, NULL, &pol, &r, &cfg);
    CHECK(st == RINGATTN_OK && !r.pass && r.outside == 1 && r.kept == 1, "one outside: pass %d outside %lld", r.pass,
          (long long)r.outside);
    CHECK(r.max_abs_at[0] == 1 && r.max_abs_at[1] == 2 && r.max_abs_at[2] == 3 && r.max_abs_at[3] == 0 &&
          fabs(r.max_abs - 1e-3) < 1e-12, "max abs position (%lld %lld %lld %lld) %g", (long long)r.max_abs_at[0],
          (long long)r.max_abs_at[1], (long long)r.max_abs_at[2], (long long)r.max_abs_at[3], r.max_abs);
    CHECK(r.bad[0].at[0] == 1 && r.bad[0].at[1] == 2 && r.bad[0].at[2] == 3 && r.bad[0].at[3] == 0, "first mismatch");
    need = ringattn_compare_format(&r, NULL, report, sizeof report);
    CHECK(need == strlen(report) && strstr(report, "(b=1, n=2, h=3, d=0)") && strstr(report, "FAIL") &&
          strstr(report, "outside tolerance:     1 of 48"), "report:\n%s", report);
    CHECK(ringattn_compare_format(&r, NULL, report, 10) == need && strlen(report) == 9, "truncated report");
    pol.atol = 2e-3;
    CHECK(ringattn_compare(&G, &R, NULL, &pol, &r, &cfg) == RINGATTN_OK && r.pass, "within atol");
    /* relative error: ref = 0 with an error is infinitely wrong relatively */
    ref[0] = base[0] = 0; got[0] = 1e-12; pol.atol = 1e-6;
    CHECK(ringattn_compare(&G, &R, NULL, &pol, &r, &cfg) == RINGATTN_OK && isinf(r.max_rel) &&
          r.max_rel_at[0] == 0 && r.max_rel_at[3] == 0, "rel at a zero ref");
    got[0] = 0;
    /* NaN / Inf: one side only always fails, whatever the tolerance */
    pol.atol = 1e300;
    got[3] = NAN;
    CHECK(ringattn_compare(&G, &R, NULL, &pol, &r, &cfg) == RINGATTN_OK && !r.pass && r.nonfinite_mismatch == 1,
          "NaN on one side");
    ref[3] = NAN;
    CHECK(ringattn_compare(&G, &R, NULL, &pol, &r, &cfg) == RINGATTN_OK && r.pass, "NaN on both sides agrees");
    got[4] = -INFINITY; ref[4] = -INFINITY;
    CHECK(ringattn_compare(&G, &R, NULL, &pol, &r, &cfg) == RINGATTN_OK && r.pass, "-inf = -inf (an empty lse row)");
    ref[4] = INFINITY;
    CHECK(ringattn_compare(&G, &R, NULL, &pol, &r, &cfg) == RINGATTN_OK && !r.pass && r.nonfinite_mismatch == 1,
          "-inf vs +inf");
    ref[4] = 1.0;
    CHECK(ringattn_compare(&G, &R, NULL, &pol, &r, &cfg) == RINGATTN_OK && !r.pass, "-inf vs finite");
    /* empty_lse: what got may hold where ref's lse is -inf (a row that sees no key) */
    {
        static const double held[4] = { -INFINITY, INFINITY, 0.0, 3.5 };
        int conv, h;
        ref[4] = -INFINITY;
        for (conv = RINGATTN_EMPTY_LSE_NEG_INF; conv <= RINGATTN_EMPTY_LSE_ANY; conv++)
            for (h = 0; h < 4; h++) {
                int want = conv == RINGATTN_EMPTY_LSE_ANY || conv == h;
                pol.empty_lse = conv; got[4] = held[h];
                st = ringattn_compare(&G, &R, NULL, &pol, &r, &cfg);
                CHECK(st == RINGATTN_OK && r.pass == want && r.nonfinite_mismatch == !want,
                      "empty_lse %d, got %g: pass %d, want %d", conv, held[h], r.pass, want);
            }
        pol.empty_lse = RINGATTN_EMPTY_LSE_POS_INF; got[4] = INFINITY;
        ringattn_compare(&G, &R, NULL, &pol, &r, &cfg);
        ringattn_compare_format(&r, NULL, report, sizeof report);
        CHECK(strstr(report, "got may be +inf where ref is -inf") != NULL, "empty_lse in the report:\n%s", report);
        got[4] = NAN;   /* a convention accepts its value only, not NaN */
        CHECK(ringattn_compare(&G, &R, NULL, &pol, &r, &cfg) == RINGATTN_OK && !r.pass, "empty_lse +inf vs NaN");
        pol.empty_lse = 4;
        st = ringattn_compare(&G, &R, NULL, &pol, &r, &cfg);
        CHECK(st == RINGATTN_ECONFIG && strstr(err, "empty_lse"), "bad empty_lse: %d %s", st, err);
        pol.empty_lse = RINGATTN_EMPTY_LSE_NEG_INF;
        CHECK(ringattn_compare_default_policy(RINGATTN_F32).empty_lse == RINGATTN_EMPTY_LSE_NEG_INF,
              "default empty_lse");
        ref[4] = 1.0;
    }
    got[4] = ref[4]; got[3] = ref[3] = 1.0;
    /* policy (b): the bound is k * max|base - ref| + eps */
    memcpy(base, ref, sizeof base);
    base[7] += 1e-4;           /* the plain computation is off by 1e-4 somewhere */
    pol = ringattn_compare_default_policy(RINGATTN_F64);
    pol.k = 2; pol.eps = 1e-6;
    st = ringattn_compare(&G, &R, &B, &pol, &r, &cfg);
    CHECK(st == RINGATTN_OK && r.policy == 'b' && fabs(r.baseline_max_abs - 1e-4) < 1e-15 &&
          fabs(r.bound - 2.01e-4) < 1e-15 && !r.pass && r.outside == 1, "policy b fails 1e-3 against 2.01e-4: %d",
          r.pass);
    base[7] += 1e-3;
    st = ringattn_compare(&G, &R, &B, &pol, &r, &cfg);
    CHECK(st == RINGATTN_OK && r.pass, "policy b passes when the plain computation is worse");
    ringattn_compare_format(&r, "bhn.", report, sizeof report);
    CHECK(strstr(report, "policy (b)") && strstr(report, "PASS"), "report b:\n%s", report);
    /* any dtype mix, strided views: an f32 copy of ref, walked backwards on axis 1 */
    {
        float f[48];
        ringattn_tensor F = ringattn_tensor_bnhd(f, RINGATTN_F32, 2, 3, 4, 2);
        int64_t b, n, h, d;
        for (b = 0; b < 2; b++) for (n = 0; n < 3; n++) for (h = 0; h < 4; h++) for (d = 0; d < 2; d++)
            f[((b * 3 + (2 - n)) * 4 + h) * 2 + d] = (float)ref[((b * 3 + n) * 4 + h) * 2 + d];
        F.data = f + 2 * F.stride[1]; F.stride[1] = -F.stride[1];
        CHECK(ringattn_compare(&F, &R, NULL, NULL, &r, &cfg) == RINGATTN_OK && r.pass && r.max_abs == 0,
              "reversed f32 view equals ref");
    }
    /* bad input */
    R.shape[3] = 1;
    st = ringattn_compare(&G, &R, NULL, NULL, &r, &cfg);
    CHECK(st == RINGATTN_ESHAPE && strstr(err, "shapes differ"), "shape mismatch: %d %s", st, err);
    R.shape[3] = 2; B.shape[0] = 1;
    CHECK(ringattn_compare(&G, &R, &B, NULL, &r, &cfg) == RINGATTN_ESHAPE, "baseline shape");
    CHECK(ringattn_compare(NULL, &R, NULL, NULL, &r, &cfg) == RINGATTN_ENULL, "NULL got");
    CHECK(ringattn_compare(&G, &R, NULL, NULL, NULL, &cfg) == RINGATTN_ENULL, "NULL res");
    return 0;
}

/* NumPy bool ('|b1'): a mask, read as RINGATTN_BOOL, one byte an element, bytes as stored; written
   back as NumPy wrote it */
static int test_bool(int *failures)
{
    unsigned char img[256], data[6] = { 1, 0, 1, 1, 0, 0 };
    char err[256] = "";
    ringattn_config cfg = ringattn_default_config();
    ringattn_npy_array arr;
    size_t len;
    int st;
    cfg.error_detail = err; cfg.error_detail_size = sizeof err;
    len = make_npy(img, 1, "{'descr': '|b1', 'fortran_order': False, 'shape': (2, 3), }", data, 6);
    memset(&arr, 0, sizeof arr);
    st = ringattn_npy_decode(img, len, &arr, &cfg);
    CHECK(st == RINGATTN_OK, "|b1 refused: %d %s", st, err);
    if (st == RINGATTN_OK) {
        CHECK(arr.t.dtype == RINGATTN_BOOL && arr.info.ndim == 2 && arr.info.data_bytes == 6 &&
              arr.t.shape[0] == 2 && arr.t.shape[1] == 3 && arr.t.shape[2] == 1 && arr.t.stride[0] == 3,
              "|b1 view: dtype %d ndim %d bytes %llu", (int)arr.t.dtype, arr.info.ndim,
              (unsigned long long)arr.info.data_bytes);
        CHECK(memcmp(arr.t.data, data, 6) == 0, "|b1 data differs");
        {   /* written back: NumPy's bytes */
            unsigned char again[256];
            size_t n2 = 0;
            st = ringattn_npy_encode(&arr.t, 2, again, sizeof again, &n2, &cfg);
            CHECK(st == RINGATTN_OK && n2 == len && memcmp(again, img, len) == 0, "|b1 re-encoded differs: %d %s", st, err);
        }
        ringattn_npy_free(&arr);
    }
    /* one byte too few: the data size is one byte an element */
    len = make_npy(img, 1, "{'descr': '|b1', 'fortran_order': False, 'shape': (2, 3), }", data, 5);
    CHECK(ringattn_npy_decode(img, len, &arr, &cfg) == RINGATTN_EFORMAT, "truncated |b1 accepted");
    return 0;
}

int main(void)
{
    int failures = 0;
    test_bool(&failures);
    test_round_trip(&failures);
    test_files(&failures);
    test_accepted(&failures);
    test_refused(&failures);
    test_compare(&failures);
    printf("test_npy: %s (%d failures)\n", failures ? "FAIL" : "ok", failures);
    return failures ? TEST_FAIL : TEST_PASS;
}
