/*
 * The AVX2 probe bodies. Twelve accumulators: two FMA pipes at 4-5 cycles latency need 8-10
 * chains in flight, and 12 plus the two constants fit in the 16 ymm registers without spills.
 */
#include "probe.h"

#include <immintrin.h>

#define ACC 12

double sipu_probe_fma_avx2(int64_t iters, float *sink) {
    __m256 acc[ACC];
    for (int j = 0; j < ACC; j++) acc[j] = _mm256_set1_ps((float) j);
    const __m256 x = _mm256_set1_ps(0.999999f), y = _mm256_set1_ps(1e-6f);
    for (int64_t i = 0; i < iters; i++)
        for (int j = 0; j < ACC; j++) acc[j] = _mm256_fmadd_ps(acc[j], x, y);
    __m256 s = acc[0];
    for (int j = 1; j < ACC; j++) s = _mm256_add_ps(s, acc[j]);
    float l[8];
    _mm256_storeu_ps(l, s);
    for (int j = 0; j < 8; j++) *sink += l[j];
    return 2.0 * 8 * ACC * (double) iters;
}

void sipu_probe_triad_avx2(float *a, const float *b, const float *c, int64_t n, float s) {
    const __m256 vs = _mm256_set1_ps(s);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(a + i, _mm256_fmadd_ps(vs, _mm256_loadu_ps(c + i), _mm256_loadu_ps(b + i)));
    for (; i < n; i++) a[i] = b[i] + s * c[i];
}
