/* The AMX tile loop of the bf16 experts' second GEMM (experts_amx.c; only where sipu_amx()). */
#ifndef SIPU_EXPERTS_AMX_H
#define SIPU_EXPERTS_AMX_H

#include <stdint.h>

/* the parts h2 is split into, hi + mid + lo (experts.c) */
#define SIPU_SPLIT_PARTS 3

/*
 * c[m * ldc + n] = sum_k w[n][k] (hi[m][k] + mid[m][k] + lo[m][k]), every product exact and summed in
 * fp32 (per 32 k: the hi, mid, lo products in turn), for n < nn, m < mc <= 16: w bf16 rows (row n at w + n * ldw, K contiguous), at the three
 * parts' a^T as consecutive [kq][16] pair panels (low = even k), kq = K rounded up to 128, halved,
 * zero past mc and K. The caller holds the tile state (sipu_gk_amx_begin / _end).
 */
void sipu_experts_amx_split(int64_t nn, int64_t k, const uint32_t *at, const uint16_t *w, int64_t ldw, int mc, float *c, int64_t ldc);

#endif
