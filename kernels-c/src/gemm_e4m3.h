/*
 * e4m3 -> bf16 for the AVX-512 GEMM files (gemm_avx512.c, gemm_amx.c), which are compiled with
 * AVX-512 BW; e4m3 values are exact in bf16, so panels decoded with it multiply exactly.
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

#endif
