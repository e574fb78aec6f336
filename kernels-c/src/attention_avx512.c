/*
 * Decode attention's row products on bf16 K/V in place (see attention_avx512.h): the staged path
 * widened every key and value row into fp32 scratch first, which moved ~3x the cache's bytes
 * through L2 for a loop bound by one core's memory rate.
 */
#include "attention_avx512.h"

#include <immintrin.h>

/* bf16 elements [c, c + 16) of a row, those below `m`, widened to fp32 (exact: the bits shifted up) */
static inline __m512 widen16(const uint16_t *row, int64_t c, __mmask16 m) {
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(m, row + c)), 16));
}

static inline __mmask16 lanes(int64_t left) { return left >= 16 ? (__mmask16) 0xFFFF : (__mmask16) ((1u << left) - 1); }

/* four keys at a time: four independent FMA chains rather than one latency-bound chain per key */
void sipu_attn_dot_bf16(int64_t d, const float *q, const uint16_t *const *krow, int64_t off, int n, float *s) {
    int j = 0;
    for (; j + 4 <= n; j += 4) {
        const uint16_t *k0 = krow[j] + off, *k1 = krow[j + 1] + off, *k2 = krow[j + 2] + off, *k3 = krow[j + 3] + off;
        __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
        for (int64_t c = 0; c < d; c += 16) {
            const __mmask16 m = lanes(d - c);
            const __m512 qv = _mm512_maskz_loadu_ps(m, q + c);
            a0 = _mm512_fmadd_ps(qv, widen16(k0, c, m), a0);
            a1 = _mm512_fmadd_ps(qv, widen16(k1, c, m), a1);
            a2 = _mm512_fmadd_ps(qv, widen16(k2, c, m), a2);
            a3 = _mm512_fmadd_ps(qv, widen16(k3, c, m), a3);
        }
        s[j] = _mm512_reduce_add_ps(a0), s[j + 1] = _mm512_reduce_add_ps(a1);
        s[j + 2] = _mm512_reduce_add_ps(a2), s[j + 3] = _mm512_reduce_add_ps(a3);
    }
    for (; j < n; j++) {
        const uint16_t *k0 = krow[j] + off;
        __m512 a0 = _mm512_setzero_ps();
        for (int64_t c = 0; c < d; c += 16) {
            const __mmask16 m = lanes(d - c);
            a0 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, q + c), widen16(k0, c, m), a0);
        }
        s[j] = _mm512_reduce_add_ps(a0);
    }
}

/* 64 columns of o at a time held in registers over all n keys, the keys in order as the staged loop */
void sipu_attn_axpy_bf16(int64_t dv, const float *p, const uint16_t *const *vrow, int64_t off, int n, float *o) {
    for (int64_t c0 = 0; c0 < dv; c0 += 64) {
        __mmask16 m[4];
        __m512 acc[4];
        for (int u = 0; u < 4; u++) {
            m[u] = c0 + 16 * u < dv ? lanes(dv - c0 - 16 * u) : 0;
            acc[u] = _mm512_maskz_loadu_ps(m[u], o + c0 + 16 * u);
        }
        for (int j = 0; j < n; j++) {
            const __m512 w = _mm512_set1_ps(p[j]);
            const uint16_t *v = vrow[j] + off;
            for (int u = 0; u < 4; u++) acc[u] = _mm512_fmadd_ps(w, widen16(v, c0 + 16 * u, m[u]), acc[u]);
        }
        for (int u = 0; u < 4; u++) _mm512_mask_storeu_ps(o + c0 + 16 * u, m[u], acc[u]);
    }
}
