/*
 * Packing helpers for the AVX-512 GEMM files (gemm_avx512.c, gemm_amx.c), which are compiled with
 * AVX-512 BW: e4m3 -> bf16 (e4m3 values are exact in bf16, so panels decoded with it multiply
 * exactly) and the 16 x 16 word transpose of K-contiguous columns into K-row panels.
 */
#ifndef SIPU_GEMM_E4M3_H
#define SIPU_GEMM_E4M3_H

#include <immintrin.h>

/* 32 e4m3 bytes -> 32 bf16 (exact): rebias the exponent, table for subnormals, NaN kept */
static inline __attribute__((always_inline)) __m512i sipu_e4m3x32_to_bf16(__m256i bytes) {
    const __m512i sub = _mm512_set_epi16(0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
                                         0x3C60, 0x3C40, 0x3C20, 0x3C00, 0x3BC0, 0x3B80, 0x3B00, 0x0000);
    __m512i x = _mm512_cvtepu8_epi16(bytes);
    __m512i mag = _mm512_and_si512(x, _mm512_set1_epi16(0x7F));
    __m512i r = _mm512_add_epi16(_mm512_slli_epi16(mag, 4), _mm512_set1_epi16(0x3C00));
    r = _mm512_mask_permutexvar_epi16(r, _mm512_cmplt_epu16_mask(mag, _mm512_set1_epi16(8)), mag, sub);
    r = _mm512_mask_mov_epi16(r, _mm512_cmpeq_epi16_mask(mag, _mm512_set1_epi16(0x7F)), _mm512_set1_epi16(0x7FC0));
    return _mm512_or_si512(r, _mm512_slli_epi16(_mm512_and_si512(x, _mm512_set1_epi16(0x80)), 8));
}

/* 16 x 16 transpose of 32-bit words: r[i] word j -> r[j] word i */
static inline __attribute__((always_inline)) void sipu_transpose16(__m512i r[16]) {
    __m512i t[16], u[16];
#pragma GCC unroll 8
    for (int i = 0; i < 16; i += 2) {
        t[i] = _mm512_unpacklo_epi32(r[i], r[i + 1]);
        t[i + 1] = _mm512_unpackhi_epi32(r[i], r[i + 1]);
    }
    /* t[4g + 0..3]: per 128-bit lane, rows 4g..4g+3 of words {0,1}, {2,3} pairwise */
#pragma GCC unroll 4
    for (int g = 0; g < 16; g += 4) {
        u[g + 0] = _mm512_unpacklo_epi64(t[g + 0], t[g + 2]); /* word 0 of each lane, rows 4g/4..+3 */
        u[g + 1] = _mm512_unpackhi_epi64(t[g + 0], t[g + 2]); /* word 1 */
        u[g + 2] = _mm512_unpacklo_epi64(t[g + 1], t[g + 3]); /* word 2 */
        u[g + 3] = _mm512_unpackhi_epi64(t[g + 1], t[g + 3]); /* word 3 */
    }
    /* u[4g + w]: lane l holds word 4l + w of rows 4g..4g+3 */
#pragma GCC unroll 4
    for (int w = 0; w < 4; w++) {
        __m512i a = _mm512_shuffle_i32x4(u[w], u[4 + w], 0x88), b = _mm512_shuffle_i32x4(u[w], u[4 + w], 0xDD);
        __m512i c = _mm512_shuffle_i32x4(u[8 + w], u[12 + w], 0x88), d = _mm512_shuffle_i32x4(u[8 + w], u[12 + w], 0xDD);
        /* a: lanes (l0 r0-3, l2 r0-3, l0 r4-7, l2 r4-7); b the same for l1, l3 */
        r[w] = _mm512_shuffle_i32x4(a, c, 0x88);      /* lane 0: word w */
        r[8 + w] = _mm512_shuffle_i32x4(a, c, 0xDD);  /* lane 2: word 8 + w */
        r[4 + w] = _mm512_shuffle_i32x4(b, d, 0x88);  /* lane 1: word 4 + w */
        r[12 + w] = _mm512_shuffle_i32x4(b, d, 0xDD); /* lane 3: word 12 + w */
    }
}

#endif
