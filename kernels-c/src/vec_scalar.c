/* The vectorized loops for the scalar path (compile flags set in CMakeLists.txt). */
#include "internal.h"

#define VT sipu_vt_scalar
#define VT_NAME "scalar"
#define SFX(f) f##_scalar
#include "vec_impl.inc"
