/*
 * The decode rows of attention.c on bf16 K/V read in place (attention_avx512.c, compiled with the
 * AVX-512 flags; reached only when sipu_simd() >= SIPU_SIMD_AVX512). Each bf16 element is widened
 * exactly to fp32 in registers, so the scores and the weighted sums are the fp32 ones of the staged
 * path up to the order of the sums.
 */
#ifndef SIPU_ATTENTION_AVX512_H
#define SIPU_ATTENTION_AVX512_H

#include <stdint.h>

/* s[j] = sum_c q[c] * k[j][c] for j < n, c < d: key row j at krow[j] + off (bf16, contiguous) */
void sipu_attn_dot_bf16(int64_t d, const float *q, const uint16_t *const *krow, int64_t off, int n, float *s);
/* o[c] += sum_j p[j] * v[j][c] for c < dv, j < n: value row j at vrow[j] + off (bf16, contiguous) */
void sipu_attn_axpy_bf16(int64_t dv, const float *p, const uint16_t *const *vrow, int64_t off, int n, float *o);

#endif
