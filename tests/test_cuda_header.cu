/* test_cuda_header.cu - ringattn_cuda.h's implementation in one .cu file (with ringattn.h's),
   for tests/cuda_header_check.sh: must compile with nvcc -Werror all-warnings and link with
   test_cuda_header_decl.c, which uses the declarations from C. */
#define RINGATTN_IMPLEMENTATION
#define RINGATTN_CUDA_IMPLEMENTATION
#include "ringattn_cuda.h"
#include "ringattn_cuda.h"   /* twice: the guards must hold */

extern "C" int cuda_header_decl_check(void);   /* defined in C */
extern "C" int cuda_header_decl_kvcache_check(void);

int main(void)
{
    int kv = cuda_header_decl_kvcache_check();
    if (kv != RINGATTN_ECUDA && kv != RINGATTN_EUNSUPPORTED) return 1;
    return cuda_header_decl_check() == RINGATTN_ECUDA || cuda_header_decl_check() == RINGATTN_OK ? 0 : 1;
}
