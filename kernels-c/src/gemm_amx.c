/*
 * AMX GEMM tile (compiled with -mamx-tile -mamx-bf16 and the AVX-512 flags; reached only when
 * sipu_amx() says the CPU and the OS allow the tile registers): C 32 x 32 fp32 in four 16 x 16
 * accumulator tiles (tmm0-3), a in two 16-row tiles (tmm4-5), b in two 16-column tiles (tmm6-7), each
 * TDPBF16PS adding 16 pairs of K. Products of bf16 are exact in fp32 and the sums accumulate in
 * fp32 (denormals flushed, as vdpbf16ps does); c is rounded to its dtype once, by the caller.
 */
#include "gemm_kernels.h"

#include <immintrin.h>

typedef struct {
    uint8_t palette, start_row, reserved[14];
    uint16_t colsb[16];
    uint8_t rows[16];
} __attribute__((packed, aligned(64))) amx_config;

/* static: GCC's _tile_loadconfig tells the compiler it reads 8 bytes only, so a local's other stores could be dropped */
static const amx_config tile_cfg = {1, 0, {0}, {64, 64, 64, 64, 64, 64, 64, 64}, {16, 16, 16, 16, 16, 16, 16, 16}};

void sipu_gk_amx_begin(void) { _tile_loadconfig(&tile_cfg); }

void sipu_gk_amx_end(void) { _tile_release(); }

void sipu_gk_amx_tile(int64_t kq, const uint32_t *ap, const uint32_t *bp, float *c, int64_t ldc, int accumulate, const float *rs, float cs) {
    const int64_t lda = kq * 4, ldcb = ldc * 4;
    if (accumulate && !rs) {
        _tile_loadd(0, c, ldcb);
        _tile_loadd(1, c + 16, ldcb);
        _tile_loadd(2, c + 16 * ldc, ldcb);
        _tile_loadd(3, c + 16 * ldc + 16, ldcb);
    } else {
        _tile_zero(0);
        _tile_zero(1);
        _tile_zero(2);
        _tile_zero(3);
    }
    const uint32_t *a1 = ap + 16 * kq;
    for (int64_t q = 0; q < kq; q += 16) {
        _tile_loadd(4, ap + q, lda);
        _tile_loadd(6, bp + q * 32, 128);
        _tile_loadd(7, bp + q * 32 + 16, 128);
        _tile_dpbf16ps(0, 4, 6);
        _tile_dpbf16ps(1, 4, 7);
        _tile_loadd(5, a1 + q, lda);
        _tile_dpbf16ps(2, 5, 6);
        _tile_dpbf16ps(3, 5, 7);
    }
    if (!rs) {
        _tile_stored(0, c, ldcb);
        _tile_stored(1, c + 16, ldcb);
        _tile_stored(2, c + 16 * ldc, ldcb);
        _tile_stored(3, c + 16 * ldc + 16, ldcb);
        return;
    }
    /* fp8 block: c (+)= (part * rs[r]) * cs */
    float part[32 * 32] __attribute__((aligned(64)));
    _tile_stored(0, part, 128);
    _tile_stored(1, part + 16, 128);
    _tile_stored(2, part + 16 * 32, 128);
    _tile_stored(3, part + 16 * 32 + 16, 128);
    const __m512 t = _mm512_set1_ps(cs);
    for (int r = 0; r < 32; r++) {
        __m512 s = _mm512_set1_ps(rs[r]);
        __m512 v0 = _mm512_mul_ps(_mm512_mul_ps(_mm512_load_ps(part + r * 32), s), t);
        __m512 v1 = _mm512_mul_ps(_mm512_mul_ps(_mm512_load_ps(part + r * 32 + 16), s), t);
        float *cr = c + r * ldc;
        if (accumulate) {
            v0 = _mm512_add_ps(_mm512_loadu_ps(cr), v0);
            v1 = _mm512_add_ps(_mm512_loadu_ps(cr + 16), v1);
        }
        _mm512_storeu_ps(cr, v0);
        _mm512_storeu_ps(cr + 16, v1);
    }
}

/* 32 e4m3 bytes -> 32 bf16 (exact), as in gemm_avx512.c */
static inline __attribute__((always_inline)) __m512i e4m3x32(__m256i bytes) {
    const __m512i sub = _mm512_set_epi16(0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
                                         0x3C60, 0x3C40, 0x3C20, 0x3C00, 0x3BC0, 0x3B80, 0x3B00, 0x0000);
    __m512i x = _mm512_cvtepu8_epi16(bytes);
    __m512i mag = _mm512_and_si512(x, _mm512_set1_epi16(0x7F));
    __m512i r = _mm512_add_epi16(_mm512_slli_epi16(mag, 4), _mm512_set1_epi16(0x3C00));
    r = _mm512_mask_permutexvar_epi16(r, _mm512_cmplt_epu16_mask(mag, _mm512_set1_epi16(8)), mag, sub);
    r = _mm512_mask_mov_epi16(r, _mm512_cmpeq_epi16_mask(mag, _mm512_set1_epi16(0x7F)), _mm512_set1_epi16(0x7FC0));
    return _mm512_or_si512(r, _mm512_slli_epi16(_mm512_and_si512(x, _mm512_set1_epi16(0x80)), 8));
}

void sipu_gk_amx_pack_a(int kind, const void *src, int64_t ld, int64_t kc, int h, uint32_t *panel, int64_t kq) {
    for (int r = 0; r < GK_AMX_MR; r++) {
        uint32_t *dst = panel + r * kq;
        for (int64_t e = 0; e < 2 * kq; e += 32) {
            int64_t n = r < h ? kc - e : 0;
            __mmask32 m = n >= 32 ? (__mmask32) 0xFFFFFFFFu : n <= 0 ? 0 : (__mmask32) ((1u << n) - 1);
            __m512i v = kind == GK_PK_E4M3 ? e4m3x32(_mm256_maskz_loadu_epi8(m, (const uint8_t *) src + r * ld + e))
                                           : _mm512_maskz_loadu_epi16(m, (const uint16_t *) src + r * ld + e);
            _mm512_store_si512(dst + e / 2, v);
        }
    }
}
