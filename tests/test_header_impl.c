/* test_header_impl.c - the one translation unit that holds the implementation.

   Defines RINGATTN_IMPLEMENTATION, includes ringattn.h twice (the second inclusion must emit
   nothing), and calls into test_header_decl.c, which uses the library through declarations
   only. Linking the two proves the implementation is emitted exactly once and that the
   public functions have external linkage (C and C++ alike). */
#define RINGATTN_IMPLEMENTATION
#include "ringattn.h"
#include "ringattn.h"

/* nor does its implementation hold the layer's (ringattn_layer.h's): these names are free */
extern int ringattn__layer_execute, ringattn__layer_check, ringattn__layer_list, ringattn__lw_names,
    ringattn__same_view, ringattn_layer_forward;

#include <stdio.h>

int header_decl_check(void);

int main(void)
{
    int r = header_decl_check();
    if (r != 0) printf("test_header: check %d failed\n", r);
    else printf("test_header: ok\n");
    return r;
}
