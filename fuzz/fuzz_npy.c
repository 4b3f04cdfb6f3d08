/* fuzz_npy.c - libFuzzer harness for the .npy reader of ringattn.h.

   Build and run (clang with libFuzzer and AddressSanitizer):
       clang -std=c99 -g -O1 -fsanitize=fuzzer,address,undefined -I. fuzz/fuzz_npy.c -lm -o fuzz_npy
       ./fuzz_npy -max_total_time=60 fuzz/corpus/npy
   Meson builds it as `fuzz_npy` when the compiler is clang and libFuzzer links (-Dfuzz=...);
   .ci/run runs it for about a minute.

   Every input goes through ringattn_npy_parse_header and ringattn_npy_decode. Beyond "no
   crash, no over-read" (ASan checks that), it checks two properties:
     - decode succeeds exactly when the header parses and the input is exactly header + data;
     - whatever decodes re-encodes, and the re-encoded image decodes to the same elements
       (bit for bit, after the byte order and Fortran order have been taken care of). */
#define RINGATTN_IMPLEMENTATION
#include "ringattn.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void fail(const char *what)
{
    fprintf(stderr, "fuzz_npy: property violated: %s\n", what);
    abort();
}

/* element i (C order over shape) of a view, as raw bytes */
static const unsigned char *elem(const ringattn_tensor *t, int64_t i, size_t es)
{
    int64_t at[4], a, o = 0;
    for (a = 3; a >= 0; a--) { at[a] = i % t->shape[a]; i /= t->shape[a]; }
    for (a = 0; a < 4; a++) o += at[a] * t->stride[a];
    return (const unsigned char *)t->data + o * (int64_t)es;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[256];
    ringattn_config cfg = ringattn_default_config();
    ringattn_npy_info info;
    ringattn_npy_array a, b;
    int hs, ds;
    cfg.error_detail = err; cfg.error_detail_size = sizeof err;

    err[0] = 0;
    hs = ringattn_npy_parse_header(data, size, &info, &cfg);
    if (hs != RINGATTN_OK && err[0] == 0) fail("a refused header left no message");
    ds = ringattn_npy_decode(data, size, &a, &cfg);
    if (hs != RINGATTN_OK && ds == RINGATTN_OK) fail("decode accepted a header that parse refused");
    if (hs == RINGATTN_OK && ds == RINGATTN_OK && size != info.data_offset + info.data_bytes)
        fail("decode accepted a size that is not header + data");
    if (ds != RINGATTN_OK) return 0;

    {   /* round trip: encode -> decode -> same elements */
        size_t es = a.info.dtype == RINGATTN_F64 ? 8 : a.info.dtype == RINGATTN_F32 ? 4 :
                    (a.info.dtype == RINGATTN_FP8_E4M3 || a.info.dtype == RINGATTN_FP8_E5M2 ||
                     a.info.dtype == RINGATTN_BOOL) ? 1 : 2;   /* |b1 masks: one byte */
        size_t len = 0; unsigned char *img; int64_t i;
        if (ringattn_npy_encode(&a.t, a.info.ndim, NULL, 0, &len, &cfg) != RINGATTN_OK) fail("encode size query");
        img = (unsigned char *)malloc(len);
        if (!img) { ringattn_npy_free(&a); return 0; }
        if (ringattn_npy_encode(&a.t, a.info.ndim, img, len, &len, &cfg) != RINGATTN_OK) fail("encode");
        if (ringattn_npy_decode(img, len, &b, &cfg) != RINGATTN_OK) fail("re-decode of our own image");
        if (b.info.ndim != a.info.ndim || b.info.count != a.info.count || b.info.dtype != a.info.dtype)
            fail("round trip changed rank, count or dtype");
        for (i = 0; i < a.info.count; i++)
            if (memcmp(elem(&a.t, i, es), elem(&b.t, i, es), es) != 0) fail("round trip changed an element");
        ringattn_npy_free(&b);
        free(img);
    }
    ringattn_npy_free(&a);
    return 0;
}
