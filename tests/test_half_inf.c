/* test_half_inf.c - regression test (found by the differential fuzzer): +-inf stored into f16 / bf16
   storage must stay infinite (it once came out finite: frexp(inf) is unspecified).

   A row that sees no key has lse = -inf (docs/semantics.md, "Fully masked rows"). With lse stored in
   f16 or bf16 the library once wrote a finite value: ringattn__double_to_small_float()
   took +-inf through frexp()/rint() and an out-of-range (uint16_t) cast (undefined
   behaviour) instead of returning the infinity bit pattern (f16 0xFC00, bf16 0xFF80).

   Case: b=1, nq=2, nk=1, h=1, d=dv=1, causal bottom-right, ring_size 1, f32 compute;
   query 0 sees no key (0 > 0 + 1 - 2), so lse[0] must be -inf.
   Build: cc -std=c99 -I. tests/test_half_inf.c -lm && ./a.out   (exit 0 pass, 1 fail) */
#include <stdint.h>
#include <stdio.h>

#define RINGATTN_IMPLEMENTATION
#include "ringattn.h"

static int run(ringattn_dtype dt, uint16_t want, const char *name)
{
    float q[2] = { 1, 1 }, k[1] = { 1 }, v[1] = { 1 }, o[2];
    uint16_t lse[2] = { 0x1234, 0x1234 };
    ringattn_tensor Q = ringattn_tensor_bnhd(q, RINGATTN_F32, 1, 2, 1, 1);
    ringattn_tensor K = ringattn_tensor_bnhd(k, RINGATTN_F32, 1, 1, 1, 1);
    ringattn_tensor V = ringattn_tensor_bnhd(v, RINGATTN_F32, 1, 1, 1, 1);
    ringattn_tensor O = ringattn_tensor_bnhd(o, RINGATTN_F32, 1, 2, 1, 1);
    ringattn_tensor L = ringattn_tensor_lse(lse, dt, 1, 1, 2);
    ringattn_config cfg = ringattn_default_config();
    int st;
    cfg.causal = RINGATTN_CAUSAL_BOTTOM_RIGHT; cfg.ring_size = 1; cfg.num_threads = 1;
    st = ringattn_forward(&cfg, &Q, &K, &V, &O, &L);
    printf("%s: status %d, lse[0] bits 0x%04x (want 0x%04x = -inf), out[0] = %g\n", name, st,
           (unsigned)lse[0], (unsigned)want, (double)o[0]);
    return st == 0 && lse[0] == want && o[0] == 0.0f;
}

int main(void)
{
    int ok = run(RINGATTN_F16, 0xFC00u, "f16 ") & run(RINGATTN_BF16, 0xFF80u, "bf16");
    printf("%s\n", ok ? "PASS" : "FAIL: -inf stored into f16/bf16 is not -inf");
    return ok ? 0 : 1;
}
