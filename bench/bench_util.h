/* bench_util.h - what the bench programs share: a monotonic clock, the median of a run's
   times, and comma-separated number lists for their options. Header-only, static. */
#ifndef RINGATTN_BENCH_UTIL_H
#define RINGATTN_BENCH_UTIL_H

#include <stdlib.h>
#include <time.h>

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* the median of t[0 .. n) (sorts t) */
static double median(double *t, int n) { qsort(t, (size_t)n, sizeof *t, cmp_double); return t[n / 2]; }

/* "1,2,4" -> out[0..n) (at most max entries); returns n */
static int parse_list(const char *s, long *out, int max)
{
    int n = 0;
    while (*s && n < max) {
        char *end; out[n++] = strtol(s, &end, 10);
        s = (*end == ',') ? end + 1 : end;
        if (end == s && *s) break;
    }
    return n;
}

#endif
