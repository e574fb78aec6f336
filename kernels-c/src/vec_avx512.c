/* The vectorized loops for the avx512 path (compile flags set in CMakeLists.txt). */
#include "internal.h"

#define VT sipu_vt_avx512
#define VT_NAME "avx512"
#define SFX(f) f##_avx512
#include "vec_impl.inc"
