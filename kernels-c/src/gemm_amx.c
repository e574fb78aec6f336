/*
 * AMX GEMM tile (compiled with -mamx-tile -mamx-bf16 and the AVX-512 flags; reached only when
 * sipu_amx() says the CPU and the OS allow the tile registers): C 32 x 32 fp32 in four 16 x 16
 * accumulator tiles (tmm0-3), a in two 16-row tiles (tmm4-5), b in two 16-column tiles (tmm6-7), each
 * TDPBF16PS adding 16 pairs of K. Products of bf16 are exact in fp32 and the sums accumulate in
 * fp32 (denormals flushed, as vdpbf16ps does); c is rounded to its dtype once, by the caller.
 */
#include "gemm_e4m3.h"
#include "gemm_kernels.h"

#include <immintrin.h>

typedef struct {
    uint8_t palette, start_row, reserved[14];
    uint16_t colsb[16];
    uint8_t rows[16];
} __attribute__((packed, aligned(64))) amx_config;

/*
 * tiles 0-3 += the 32 rows of a times the two 16-column halves of b, over K steps [s0, s1) (16 pairs
 * each): a's step s at ap + s * astep, its rows lda bytes apart and rows 16-31 ahalf words after
 * rows 0-15 (the GEMM's panels: one contiguous 2 KiB block per step, see sipu_gk_amx_pack_a).
 */
static inline __attribute__((always_inline)) void dot_pairs(const uint32_t *ap, int64_t astep, int64_t ahalf, int64_t lda, const uint32_t *bp,
                                                            int64_t s0, int64_t s1) {
    for (int64_t s = s0; s < s1; s++) {
        const uint32_t *as = ap + s * astep, *bs = bp + s * GK_AMX_STEP;
        _tile_loadd(4, as, lda);
        _tile_loadd(6, bs, 128);
        _tile_loadd(7, bs + 16, 128);
        _tile_dpbf16ps(0, 4, 6);
        _tile_dpbf16ps(1, 4, 7);
        _tile_loadd(5, as + ahalf, lda);
        _tile_dpbf16ps(2, 5, 6);
        _tile_dpbf16ps(3, 5, 7);
    }
}

/* the GEMM's panels of a (see dot_pairs) */
#define PANEL_A GK_AMX_STEP, 256, 64

static inline __attribute__((always_inline)) void zero_tiles(void) {
    _tile_zero(0);
    _tile_zero(1);
    _tile_zero(2);
    _tile_zero(3);
}

/* tiles 0-3 -> the 32 x 32 fp32 block at c (row stride ldc floats) */
static inline __attribute__((always_inline)) void store_tiles(float *c, int64_t ldc) {
    const int64_t ldcb = ldc * 4;
    _tile_stored(0, c, ldcb);
    _tile_stored(1, c + 16, ldcb);
    _tile_stored(2, c + 16 * ldc, ldcb);
    _tile_stored(3, c + 16 * ldc + 16, ldcb);
}

/* acc (+)= (part * rs[r]) * cs over a 32 x 32 block (DeepSeek's scaling order); both contiguous */
static inline __attribute__((always_inline)) void fold_scaled(float *acc, const float *part, int add, const float *rs, float cs) {
    const __m512 t = _mm512_set1_ps(cs);
    for (int r = 0; r < 32; r++) {
        __m512 s = _mm512_set1_ps(rs[r]);
        for (int h = 0; h < 32; h += 16) {
            __m512 v = _mm512_mul_ps(_mm512_mul_ps(_mm512_load_ps(part + r * 32 + h), s), t);
            if (add) v = _mm512_add_ps(_mm512_load_ps(acc + r * 32 + h), v);
            _mm512_store_ps(acc + r * 32 + h, v);
        }
    }
}

/* static: GCC's _tile_loadconfig tells the compiler it reads 8 bytes only, so a local's other stores could be dropped */
static const amx_config tile_cfg = {1, 0, {0}, {64, 64, 64, 64, 64, 64, 64, 64}, {16, 16, 16, 16, 16, 16, 16, 16}};

void sipu_gk_amx_begin(void) { _tile_loadconfig(&tile_cfg); }

void sipu_gk_amx_end(void) { _tile_release(); }

/* c[32 x 32] = (accumulate ? c : 0) + a b, a as dot_pairs takes it */
static inline __attribute__((always_inline)) void tile(int64_t kq, const uint32_t *ap, int64_t astep, int64_t ahalf, int64_t lda, const uint32_t *bp,
                                                       float *c, int64_t ldc, int accumulate) {
    const int64_t ldcb = ldc * 4;
    if (accumulate) {
        _tile_loadd(0, c, ldcb);
        _tile_loadd(1, c + 16, ldcb);
        _tile_loadd(2, c + 16 * ldc, ldcb);
        _tile_loadd(3, c + 16 * ldc + 16, ldcb);
    } else {
        zero_tiles();
    }
    dot_pairs(ap, astep, ahalf, lda, bp, 0, kq / 16);
    store_tiles(c, ldc);
}

void sipu_gk_amx_tile(int64_t kq, const uint32_t *ap, const uint32_t *bp, float *c, int64_t ldc, int accumulate) {
    tile(kq, ap, PANEL_A, bp, c, ldc, accumulate);
}

void sipu_gk_amx_tile_rows(int64_t kq, const uint32_t *ap, const uint32_t *bp, float *c, int64_t ldc, int accumulate) {
    tile(kq, ap, 16, 16 * kq, kq * 4, bp, c, ldc, accumulate);
}

/* the last K step of a scale block: each tile stored into part and zeroed right after its last product */
static inline __attribute__((always_inline)) void last_step_store(const uint32_t *ap, const uint32_t *bp, int64_t s, float *part) {
    const uint32_t *as = ap + s * GK_AMX_STEP, *bs = bp + s * GK_AMX_STEP;
    _tile_loadd(4, as, 64);
    _tile_loadd(6, bs, 128);
    _tile_loadd(7, bs + 16, 128);
    _tile_dpbf16ps(0, 4, 6);
    _tile_stored(0, part, 128);
    _tile_zero(0);
    _tile_dpbf16ps(1, 4, 7);
    _tile_stored(1, part + 16, 128);
    _tile_zero(1);
    _tile_loadd(5, as + 256, 64);
    _tile_dpbf16ps(2, 5, 6);
    _tile_stored(2, part + 16 * 32, 128);
    _tile_zero(2);
    _tile_dpbf16ps(3, 5, 7);
    _tile_stored(3, part + 16 * 32 + 16, 128);
    _tile_zero(3);
}

/*
 * fp8 tile over several 128-wide scale blocks: for each block sb (64 pairs; the last may be shorter),
 * c = (c or 0) + (part * rs[sb * 32 + r]) * cs[sb], in block order as DeepSeek's kernel adds them.
 * The running sum stays in a contiguous block (c's rows are a multiple of 4 KiB apart, so they would
 * evict each other from L1), and each block's partial is folded while the tiles compute the next one.
 */
void sipu_gk_amx_tile_scaled(int64_t kq, const uint32_t *ap, const uint32_t *bp, float *c, int64_t ldc, int accumulate, const float *rs,
                             const float *cs) {
    float acc[32 * 32] __attribute__((aligned(64)));
    float part[2][32 * 32] __attribute__((aligned(64)));
    if (accumulate)
        for (int r = 0; r < 32; r++) memcpy(acc + r * 32, c + r * ldc, 32 * sizeof(float));
    int64_t sb = 0;
    zero_tiles();
    for (int64_t q0 = 0; q0 < kq; q0 += 64, sb++) {
        int64_t s1 = (q0 + 64 < kq ? q0 + 64 : kq) / 16;
        dot_pairs(ap, PANEL_A, bp, q0 / 16, s1 - 1);
        /* the previous block's fold runs on the vector units while these tiles multiply */
        if (sb > 0) fold_scaled(acc, part[(sb - 1) & 1], accumulate || sb > 1, rs + (sb - 1) * 32, cs[sb - 1]);
        last_step_store(ap, bp, s1 - 1, part[sb & 1]);
    }
    fold_scaled(acc, part[(sb - 1) & 1], accumulate || sb > 1, rs + (sb - 1) * 32, cs[sb - 1]);
    for (int r = 0; r < 32; r++) memcpy(c + r * ldc, acc + r * 32, 32 * sizeof(float));
}

void sipu_gk_amx_pack_a(int kind, const void *src, int64_t ld, int64_t kc, int h, uint32_t *panel, int64_t kq) {
    for (int r = 0; r < GK_AMX_MR; r++) {
        for (int64_t e = 0; e < 2 * kq; e += 32) {
            int64_t n = r < h ? kc - e : 0;
            __mmask32 m = n >= 32 ? (__mmask32) 0xFFFFFFFFu : n <= 0 ? 0 : (__mmask32) ((1u << n) - 1);
            __m512i v = kind == GK_PK_E4M3 ? sipu_e4m3x32_to_bf16(_mm256_maskz_loadu_epi8(m, (const uint8_t *) src + r * ld + e))
                                           : _mm512_maskz_loadu_epi16(m, (const uint16_t *) src + r * ld + e);
            _mm512_store_si512(panel + (e / 32) * GK_AMX_STEP + r * 16, v);
        }
    }
}

/* 16 pair words of a K-contiguous column from word q0 on (kc elements, zero beyond; all 32 elements when whole) */
static inline __attribute__((always_inline)) __m512i load_pairs(const int FP8, const int WHOLE, const void *col, int64_t q0, int64_t kc) {
    int64_t n = kc - 2 * q0;
    __mmask32 m = WHOLE || n >= 32 ? (__mmask32) 0xFFFFFFFFu : n <= 0 ? 0 : (__mmask32) ((1u << n) - 1);
    if (FP8) return sipu_e4m3x32_to_bf16(WHOLE ? _mm256_loadu_si256((const __m256i *) ((const uint8_t *) col + 2 * q0))
                                             : _mm256_maskz_loadu_epi8(m, (const uint8_t *) col + 2 * q0));
    return WHOLE ? _mm512_loadu_si512((const uint16_t *) col + 2 * q0) : _mm512_maskz_loadu_epi16(m, (const uint16_t *) col + 2 * q0);
}

/* rows [q0, q0 + 16) of columns [g, g + 16) of the panel: 16 loads (columns past w zero), one word transpose */
static inline __attribute__((always_inline)) void pack_b16(const int FP8, const int WHOLE, const char *src, int64_t ldb, int64_t kc, int cols,
                                                           int64_t q0, uint32_t *dst) {
    __m512i r[16];
#pragma GCC unroll 16
    for (int j = 0; j < 16; j++) r[j] = WHOLE || j < cols ? load_pairs(FP8, WHOLE, src + j * ldb, q0, kc) : _mm512_setzero_si512();
    sipu_transpose16(r);
#pragma GCC unroll 16
    for (int i = 0; i < 16; i++) _mm512_store_si512(dst + i * GK_AMX_NR, r[i]);
}

/*
 * No prefetch of the next columns into L1 (unlike the AVX-512 pack): at K = 7168 the columns are
 * 7 x 2 KiB apart, so a group's lines already fill two L1 sets and the prefetched ones evicted them.
 * Whole 16 x 16 blocks take plain loads (no masks, no per-column tests).
 */
static inline __attribute__((always_inline)) void pack_b_t(const int FP8, const void *src, int64_t ld, int64_t kc, int w, uint32_t *panel,
                                                           int64_t kqp) {
    const int64_t ldb = ld * (FP8 ? 1 : 2);
    for (int g = 0; g < GK_AMX_NR; g += 16) {
        const char *s = (const char *) src + g * ldb;
        const int cols = w - g;
        int64_t q0 = 0;
        if (cols >= 16)
            for (; 2 * q0 + 32 <= kc; q0 += 16) pack_b16(FP8, 1, s, ldb, kc, 16, q0, panel + q0 * GK_AMX_NR + g);
        for (; q0 < kqp; q0 += 16) pack_b16(FP8, 0, s, ldb, kc, cols, q0, panel + q0 * GK_AMX_NR + g);
    }
}

void sipu_gk_amx_pack_b(int kind, const void *src, int64_t ld, int64_t kc, int w, uint32_t *panel, int64_t kqp) {
    if (kind == GK_PK_E4M3) pack_b_t(1, src, ld, kc, w, panel, kqp);
    else pack_b_t(0, src, ld, kc, w, panel, kqp);
}

/*
 * Decode (few rows of a, K-contiguous weights): the roles swap so the weights feed the tiles as they
 * lie in memory. C^T[n][m] = sum_k w[n][k] a[m][k] in 16 x 16 tiles: the weight rows are the
 * 16-row tile (direct loads for bf16, e4m3 decoded into a small buffer), a^T the 16-column pair tile.
 * One call covers nn <= 64 weight rows, 16 at a time over all of K in 128-wide chunks (fp8: each chunk
 * is a scale block, stored, scaled as (part * as) * bs and added in fp32).
 */
#define DEC_KC 128

/* prefetch distance in chunks */
#define DEC_PF 2

/* w rows [rows][DEC_KC] of chunk k0 into bf16 (zero beyond nn rows and K) */
static inline __attribute__((always_inline)) void dec_chunk(const int ROWS, int fp8, const uint8_t *w, int64_t ldw, int nn, int64_t k0, int64_t k,
                                                            uint16_t *buf) {
    const int isz = fp8 ? 1 : 2;
    for (int r = 0; r < ROWS; r++) {
        if (r < nn && k0 + DEC_PF * DEC_KC < k)
            for (int e = 0; e < DEC_KC * isz; e += 64) _mm_prefetch((const char *) w + (r * ldw + k0 + DEC_PF * DEC_KC) * isz + e, _MM_HINT_T0);
        for (int e = 0; e < DEC_KC; e += 32) {
            int64_t n = r < nn ? k - (k0 + e) : 0;
            __mmask32 m = n >= 32 ? (__mmask32) 0xFFFFFFFFu : n <= 0 ? 0 : (__mmask32) ((1u << n) - 1);
            __m512i v = fp8 ? sipu_e4m3x32_to_bf16(_mm256_maskz_loadu_epi8(m, w + r * ldw + k0 + e))
                            : _mm512_maskz_loadu_epi16(m, (const uint16_t *) w + r * ldw + k0 + e);
            _mm512_store_si512(buf + r * DEC_KC + e, v);
        }
    }
}

/*
 * 16 weight rows (one accumulator tile) per pass over K: 16 row streams is what the L2 streamer
 * follows; with 64 rows (4 tiles) decode ran at ~60 % of this speed (measured, fp8 and bf16).
 */
static void amx_decode16(int fp8, int64_t nn, int64_t k, const uint32_t *at, const uint8_t *w,
                                                               int64_t ldw, int mc, float *c, int64_t ldc, const float *ast, const float *bs) {
    enum { ROWS = 16 };
    /* two chunk buffers: chunk i + 1 is decoded while the tiles multiply chunk i, so no tile load waits for fresh stores */
    uint16_t buf[2][ROWS * DEC_KC] __attribute__((aligned(64)));
    float acc[ROWS * 16] __attribute__((aligned(64)));
    float part[ROWS * 16] __attribute__((aligned(64)));
    const bool direct = !fp8 && nn == ROWS;
    _tile_zero(0);
    if (fp8) memset(acc, 0, sizeof acc);
    if (!direct || k < DEC_KC) dec_chunk(ROWS, fp8, w, ldw, (int) nn, 0, k, buf[0]);
    for (int64_t k0 = 0, i = 0; k0 < k; k0 += DEC_KC, i++) {
        const char *s;
        int64_t lds;
        if (direct && k0 + DEC_KC <= k) {
            s = (const char *) ((const uint16_t *) w + k0);
            lds = ldw * 2;
        } else {
            s = (const char *) buf[i & 1];
            lds = DEC_KC * 2;
        }
        const uint32_t *bt = at + (k0 / 2) * 16;
        for (int q = 0; q < 4; q++) {
            _tile_loadd(6, bt + q * 16 * 16, 64);
            _tile_loadd(4, s + q * 64, lds);
            _tile_dpbf16ps(0, 4, 6);
        }
        int64_t k1 = k0 + DEC_KC;
        if (k1 < k && (!direct || k1 + DEC_KC > k)) dec_chunk(ROWS, fp8, w, ldw, (int) nn, k1, k, buf[(i + 1) & 1]);
        if (fp8) {
            int64_t kb = k0 / DEC_KC;
            _tile_stored(0, part, 64);
            _tile_zero(0);
            __m512 sa = _mm512_load_ps(ast + kb * 16), sb = _mm512_set1_ps(bs[kb]);
            for (int r = 0; r < ROWS; r++)
                _mm512_store_ps(acc + r * 16, _mm512_add_ps(_mm512_load_ps(acc + r * 16),
                                                            _mm512_mul_ps(_mm512_mul_ps(_mm512_load_ps(part + r * 16), sa), sb)));
        }
    }
    if (!fp8) {
        _tile_stored(0, acc, 64);
    }
    for (int m = 0; m < mc; m++)
        for (int r = 0; r < nn; r++) c[m * ldc + r] = acc[r * 16 + m];
}

void sipu_gk_amx_decode(int fp8, int64_t nn, int64_t k, const uint32_t *at, const uint8_t *w, int64_t ldw, int mc, float *c, int64_t ldc,
                        const float *ast, const float *bs) {
    for (int64_t r0 = 0; r0 < nn; r0 += 16)
        amx_decode16(fp8, nn - r0 < 16 ? nn - r0 : 16, k, at, w + r0 * ldw * (fp8 ? 1 : 2), ldw, mc, c + r0, ldc, ast, bs);
}
