/* test_header_static.c - RINGATTN_STATIC: a private copy of the library in this file.

   Every function becomes static; most of them are never called here, and a strict build
   (-Wall -Wextra -Werror) must still be silent about it. */
#define RINGATTN_STATIC
#define RINGATTN_IMPLEMENTATION
#include "ringattn.h"

#include <stdio.h>

int main(void)
{
    float q[2] = { 1.0f, 2.0f }, k[2] = { 0.5f, -1.0f }, v[2] = { 3.0f, -4.0f }, o[2] = { 0.0f, 0.0f };
    ringattn_tensor Q = ringattn_tensor_bnhd(q, RINGATTN_F32, 1, 1, 1, 2);
    ringattn_tensor K = ringattn_tensor_bnhd(k, RINGATTN_F32, 1, 1, 1, 2);
    ringattn_tensor V = ringattn_tensor_bnhd(v, RINGATTN_F32, 1, 1, 1, 2);
    ringattn_tensor O = ringattn_tensor_bnhd(o, RINGATTN_F32, 1, 1, 1, 2);
    ringattn_config cfg = ringattn_default_config();
    int st = ringattn_forward(&cfg, &Q, &K, &V, &O, NULL);
    /* one key: the output is that key's value, exactly */
    if (st != RINGATTN_OK || o[0] != 3.0f || o[1] != -4.0f) {
        printf("test_header_static: %s, out = %g %g\n", ringattn_strerror(st), o[0], o[1]);
        return 1;
    }
    printf("test_header_static: ok\n");
    return 0;
}
