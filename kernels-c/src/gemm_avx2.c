/* AVX2 GEMM microkernel (compiled with -mavx2 -mfma; reached only through the runtime dispatch): fp32 6 x 16. */
#include "gemm_kernels.h"

#include <immintrin.h>

#define MR 6
#define NR 16

static void tile_f32(int64_t kc, const float *ap, const float *bp, float *c, int64_t ldc, int accumulate, const float *rs, float cs) {
    __m256 c0[MR], c1[MR];
#pragma GCC unroll 6
    for (int r = 0; r < MR; r++) c0[r] = c1[r] = _mm256_setzero_ps();
    for (int64_t p = 0; p < kc; p++) {
        __m256 b0 = _mm256_loadu_ps(bp), b1 = _mm256_loadu_ps(bp + 8);
#pragma GCC unroll 6
        for (int r = 0; r < MR; r++) {
            __m256 a = _mm256_broadcast_ss(ap + r);
            c0[r] = _mm256_fmadd_ps(a, b0, c0[r]);
            c1[r] = _mm256_fmadd_ps(a, b1, c1[r]);
        }
        ap += MR;
        bp += NR;
    }
#pragma GCC unroll 6
    for (int r = 0; r < MR; r++) {
        __m256 v0 = c0[r], v1 = c1[r];
        if (rs) {
            __m256 s = _mm256_set1_ps(rs[r]), t = _mm256_set1_ps(cs);
            v0 = _mm256_mul_ps(_mm256_mul_ps(v0, s), t);
            v1 = _mm256_mul_ps(_mm256_mul_ps(v1, s), t);
        }
        float *cr = c + r * ldc;
        if (accumulate) {
            v0 = _mm256_add_ps(_mm256_loadu_ps(cr), v0);
            v1 = _mm256_add_ps(_mm256_loadu_ps(cr + 8), v1);
        }
        _mm256_storeu_ps(cr, v0);
        _mm256_storeu_ps(cr + 8, v1);
    }
}

const gk_isa sipu_gk_avx2 = {"avx2", MR, NR, tile_f32, NULL, NULL, NULL, NULL, NULL, NULL, NULL};
