/* The vectorized loops for the avx2 path (compile flags set in CMakeLists.txt). */
#include "internal.h"

#define VT sipu_vt_avx2
#define VT_NAME "avx2"
#define SFX(f) f##_avx2
#include "vec_impl.inc"
