/* test_convert.c - the f16 / bf16 conversions of ringattn.h against the plain formulas.

   ringattn__small_float_to_double and ringattn__double_to_small_float work on the bits
   (every bf16 / f16 input is converted by them while it is packed, and the precision
   emulation rounds every P through them). Here they meet the formulas they implement,
   written with ldexp / frexp / rint, as different from bit twiddling as code can be:

     load:  (-1)^s * 2^(e - bias - mant) * (2^mant + m)   (e = 0: 2^(1 - bias - mant) * m)
     store: one round-to-nearest-even of |x| at the target's quantum for |x|'s binade
            (fixed below the smallest normal), overflow to infinity, NaN stays NaN

   1. every one of the 2 x 65536 patterns loads to the formula's value (NaN to NaN), and
      stores back to itself (NaN to a NaN pattern); the packing's float decoders
      (ringattn__bf16_to_float, ringattn__f16_to_float) give the same double, bit for bit;
   2. stores of every midpoint between two neighbouring finite values, the doubles just
      beside it, the values beyond the largest finite one, and 2 million doubles spread over
      exponents -160..+40 (uniform in their binade, random signs) and 2 million f32 bit
      patterns: the same bits as the formula;
   3. fp8 e5m2 (the 16-bit path with 2 mantissa bits): all 256 patterns round-trip;
   4. ringattn__round_float (the emulation's rounding of a float, on its bits) equals
      ringattn__round at every f16 / bf16 value, the floats beside it and beside the
      midpoints, and 4 million random float bit patterns per type.
   Exit 0 pass, 1 fail. */
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#define RINGATTN_IMPLEMENTATION
#include "ringattn.h"
#include "test_util.h"

/* ---------------------------------------------------------------- the formulas */
static double plain_load(uint16_t bits, int mant, int expb)
{
    int bias = (1 << (expb - 1)) - 1;
    int e = (bits >> mant) & ((1 << expb) - 1);
    int m = bits & ((1 << mant) - 1);
    double s = (bits >> 15) ? -1.0 : 1.0;
    if (e == (1 << expb) - 1) return m ? (double)NAN : s * (double)INFINITY;
    if (e == 0) return s * ldexp((double)m, 1 - bias - mant);
    return s * ldexp((double)(m | (1 << mant)), e - bias - mant);
}

static uint16_t plain_store(double x, int mant, int expb)
{
    int bias = (1 << (expb - 1)) - 1, emax = (1 << expb) - 1, e;
    uint16_t sign = (uint16_t)(signbit(x) ? 0x8000u : 0u);
    double a = fabs(x), q;
    if (x != x) return (uint16_t)(sign | (emax << mant) | (1 << (mant - 1)));
    if (a == (double)INFINITY) return (uint16_t)(sign | (emax << mant));
    if (a == 0) return sign;
    (void)frexp(a, &e);
    e -= 1;                                     /* a in [2^e, 2^(e+1)) */
    if (e < 1 - bias) e = 1 - bias;
    q = rint(ldexp(a, mant - e));               /* the default rounding mode: to nearest even */
    if (q >= ldexp(1.0, mant + 1)) { q = ldexp(q, -1); e += 1; }
    if (e + bias >= emax) return (uint16_t)(sign | (emax << mant));
    if (q < ldexp(1.0, mant)) return (uint16_t)(sign | (uint16_t)q);
    return (uint16_t)(sign | ((e + bias) << mant) | ((uint16_t)q & ((1 << mant) - 1)));
}

static int same_double(double a, double b)
{
    return (a != a && b != b) || (a == b && signbit(a) == signbit(b));
}

/* one store checked; prints the first few differences */
static void check_store(double x, int mant, int expb, const char *name, int *bad)
{
    uint16_t got = ringattn__double_to_small_float(x, mant, expb), want = plain_store(x, mant, expb);
    if (got != want && (*bad)++ < 8)
        printf("  FAIL store %.17g (%a) as %s: 0x%04x, the formula 0x%04x\n", x, x, name, got, want);
}

int main(void)
{
    int failures_ = 0, *failures = &failures_, kind;
    test_rng r = rng_seed(7);
    for (kind = 0; kind < 2; kind++) {
        int mant = kind ? 7 : 10, expb = kind ? 8 : 5, bad = 0;
        long nstores = 0;
        const char *name = kind ? "bf16" : "f16";
        uint32_t u;
        long i;
        /* 1. every pattern */
        for (u = 0; u < 65536; u++) {
            double got = ringattn__small_float_to_double((uint16_t)u, mant, expb), want = plain_load((uint16_t)u, mant, expb);
            uint16_t back = ringattn__double_to_small_float(got, mant, expb);
            if (!same_double(got, want) && bad++ < 8)
                printf("  FAIL load 0x%04x as %s: %.17g, the formula %.17g\n", (unsigned)u, name, got, want);
            int nan_back = (int)((back >> mant) & ((1u << expb) - 1)) == (1 << expb) - 1 && (back & ((1u << mant) - 1)) != 0;
            if (got == got ? back != u : !nan_back) {
                if (bad++ < 8) printf("  FAIL 0x%04x as %s does not store back to itself: 0x%04x\n", (unsigned)u, name, back);
            }
            {   /* the packing's float decoders: the same double, bit for bit (NaN included) */
                double viaf = (double)(kind ? ringattn__bf16_to_float((uint16_t)u) : ringattn__f16_to_float((uint16_t)u));
                if (memcmp(&viaf, &got, sizeof got) != 0 && bad++ < 8)
                    printf("  FAIL 0x%04x as %s through the float decoder: %.17g, not %.17g\n", (unsigned)u, name, viaf, got);
            }
        }
        /* 2. the rounding boundaries: midpoints and their neighbours, past the largest value */
        for (u = 0; u < 65535; u++) {
            double a = plain_load((uint16_t)u, mant, expb), b = plain_load((uint16_t)(u + 1), mant, expb), m;
            if (a != a || b != b || isinf(a) || isinf(b)) continue;
            m = a + (b - a) / 2;
            check_store(m, mant, expb, name, &bad);
            check_store(nextafter(m, INFINITY), mant, expb, name, &bad);
            check_store(nextafter(m, -INFINITY), mant, expb, name, &bad);
            check_store(nextafter(a, 0.0), mant, expb, name, &bad);
            nstores += 4;
        }
        {
            double big = plain_load((uint16_t)(((1 << expb) - 1) << mant) - 1, mant, expb);   /* largest finite */
            double ulp = ldexp(1.0, (int)log2(big) - mant);
            static const double sp[] = { 0.0, -0.0, 1.0, -1.0, 1e-300, -1e-300, 4.9e-324, 1e300, -1e300 };
            size_t k;
            check_store(big + ulp / 2, mant, expb, name, &bad);
            check_store(nextafter(big + ulp / 2, 0.0), mant, expb, name, &bad);
            check_store(-(big + ulp / 2), mant, expb, name, &bad);
            check_store(big * 4, mant, expb, name, &bad);
            check_store((double)INFINITY, mant, expb, name, &bad);
            check_store(-(double)INFINITY, mant, expb, name, &bad);
            check_store((double)NAN, mant, expb, name, &bad);
            for (k = 0; k < sizeof sp / sizeof sp[0]; k++) check_store(sp[k], mant, expb, name, &bad);
        }
        /* random doubles over many binades, and random f32 bit patterns (what f32 compute stores) */
        for (i = 0; i < 2000000; i++) {
            int ex = (int)(rng_next(&r) % 201) - 160;
            double x = ldexp(1.0 + rng_uniform(&r), ex);
            float f;
            uint32_t fb = (uint32_t)rng_next(&r);
            check_store((rng_next(&r) & 1) ? -x : x, mant, expb, name, &bad);
            memcpy(&f, &fb, sizeof f);
            check_store((double)f, mant, expb, name, &bad);
            nstores += 2;
        }
        CHECK(bad == 0, "%s: %d conversions differ from the formulas", name, bad);
        printf("%-4s 65536 loads and round trips, %ld stores: %s\n", name, nstores, bad ? "FAIL" : "same bits as the formulas");
    }
    {   /* 4. the float path of the emulation's rounding against ringattn__round */
        int bad = 0, kind;
        long i, nchk = 0;
        for (kind = 0; kind < 2; kind++) {
            ringattn_dtype t = kind ? RINGATTN_BF16 : RINGATTN_F16;
            int mant = kind ? 7 : 10, expb = kind ? 8 : 5;
            uint32_t u;
            for (u = 0; u < 65535; u++) {   /* every value, its float neighbours, the float midpoints' */
                double a = plain_load((uint16_t)u, mant, expb), b = plain_load((uint16_t)(u + 1), mant, expb);
                float xs[6];
                int k;
                if (a != a || b != b || isinf(a) || isinf(b) || fabs(a) > FLT_MAX || fabs(b) > FLT_MAX) continue;
                xs[0] = (float)a; xs[1] = (float)(a + (b - a) / 2);
                xs[2] = nextafterf(xs[1], INFINITY); xs[3] = nextafterf(xs[1], -INFINITY);
                xs[4] = nextafterf(xs[0], INFINITY); xs[5] = nextafterf(xs[0], -INFINITY);
                for (k = 0; k < 6; k++) {
                    float got = ringattn__round_float(xs[k], t), want = (float)ringattn__round(xs[k], t);
                    if (!same_double(got, want) && bad++ < 8)
                        printf("  FAIL round %.9g (%a) to %s: %.9g, ringattn__round %.9g\n", (double)xs[k], (double)xs[k],
                               kind ? "bf16" : "f16", (double)got, (double)want);
                    nchk++;
                }
            }
            for (i = 0; i < 4000000; i++) {   /* random bit patterns: every exponent, NaN and infinity */
                uint32_t fb = (uint32_t)rng_next(&r);
                float x, got, want;
                memcpy(&x, &fb, sizeof x);
                got = ringattn__round_float(x, t); want = (float)ringattn__round(x, t);
                if (!same_double(got, want) && bad++ < 8)
                    printf("  FAIL round %.9g (0x%08x) to %s: %.9g, ringattn__round %.9g\n", (double)x, (unsigned)fb,
                           kind ? "bf16" : "f16", (double)got, (double)want);
                nchk++;
            }
        }
        CHECK(bad == 0, "the float rounding differs from ringattn__round %d times", bad);
        printf("float rounding to f16 / bf16, %ld values: %s\n", nchk, bad ? "FAIL" : "the same as ringattn__round");
    }
    {   /* 3. fp8 e5m2 rides on the 16-bit path */
        int bad = 0, b;
        for (b = 0; b < 256; b++) {
            double x = ringattn__e5m2_to_double((uint8_t)b), want = plain_load((uint16_t)(((b & 0x80) << 8) | (b & 0x7F)), 2, 5);
            if (!same_double(x, want) || (x == x && ringattn__double_to_e5m2(x) != b)) bad++;
        }
        CHECK(bad == 0, "e5m2: %d of 256 patterns load or store wrong", bad);
        printf("e5m2 256 patterns: %s\n", bad ? "FAIL" : "ok");
    }
    printf("%s\n", failures_ ? "FAIL" : "PASS");
    return failures_ ? 1 : 0;
}
