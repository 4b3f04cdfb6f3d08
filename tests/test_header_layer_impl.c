/* test_header_layer_impl.c - ringattn_layer.h: the translation unit with the implementations.

   Includes ringattn.h first, then ringattn_layer.h twice, under RINGATTN_IMPLEMENTATION: the
   core's implementation is emitted by the first include, the layer's by the second (after
   it, as it needs), nothing by the third. Calls into test_header_layer_decl.c, which uses the
   layer through declarations only: linking the two proves that the layer's functions are
   emitted exactly once, with external linkage (C and C++ alike). */
#define RINGATTN_IMPLEMENTATION
#include "ringattn.h"
#include "ringattn_layer.h"
#include "ringattn_layer.h"

#include <stdio.h>

int header_layer_decl_check(void);

int main(void)
{
    int r = header_layer_decl_check();
    if (r != 0) printf("test_header_layer: check %d failed\n", r);
    else printf("test_header_layer: ok\n");
    return r;
}
