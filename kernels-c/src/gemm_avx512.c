/*
 * AVX-512 GEMM microkernels (compiled with -mavx512f -mavx512bf16 ...; only reached through the
 * runtime dispatch in gemm_kernels.c): fp32 FMA 14 x 32 tiles, bf16 pair dots (vdpbf16ps) 14 x 32,
 * and the small-M weight-streaming loops.
 */
#include "gemm_e4m3.h"
#include "gemm_kernels.h"

#include <immintrin.h>
#include <stdlib.h>

#define MR 14
#define NR 32

#define AI static inline __attribute__((always_inline))

AI void store_tile_row(float *c, __m512 v0, __m512 v1, int accumulate, const float *rs, float cs, int r) {
    if (rs) {
        __m512 s = _mm512_set1_ps(rs[r]), t = _mm512_set1_ps(cs);
        v0 = _mm512_mul_ps(_mm512_mul_ps(v0, s), t);
        v1 = _mm512_mul_ps(_mm512_mul_ps(v1, s), t);
    }
    if (accumulate) {
        v0 = _mm512_add_ps(_mm512_loadu_ps(c), v0);
        v1 = _mm512_add_ps(_mm512_loadu_ps(c + 16), v1);
    }
    _mm512_storeu_ps(c, v0);
    _mm512_storeu_ps(c + 16, v1);
}

/*
 * The FMA loop of R x 32 tiles: c0[r], c1[r] = the products of R broadcast rows and a [kc][32] b
 * panel. The rows come from a packed a panel (ap[p * MR + r], the 14-row stride) or, WT, from
 * weight rows (ap[r * GK_WT_LD + p]); then the stream pf (the next weight rows) advances on the
 * way. nc lines of the c the tile stores (rows at c, ld ldc, two lines per row, the second at
 * c + off2) are prefetched, one every 4 steps.
 */
AI void tile_loop(const int R, const int WT, int64_t kc, const float *ap, const float *bp, const float *c, int64_t ldc,
                  int nc, int off2, gk_pf *pf, __m512 c0[MR], __m512 c1[MR]) {
    const char *pp = WT ? pf->p : NULL;
    int64_t poff = WT ? pf->off : 0, pbytes = WT ? pf->bytes : 0, pld = WT ? pf->ld : 0;
    int pcols = WT ? pf->cols : 0, pevery = WT ? pf->every : 0;
#pragma GCC unroll 14
    for (int r = 0; r < R; r++) c0[r] = c1[r] = _mm512_setzero_ps();
    for (int64_t p = 0; p < kc; p++) {
        __m512 b0 = _mm512_load_ps(bp), b1 = _mm512_load_ps(bp + 16);
        /* both lines of the step 8 ahead: a b panel of the f32 GEMM's deep K blocks streams from L2 */
        _mm_prefetch((const char *) (bp + 8 * NR), _MM_HINT_T0);
        _mm_prefetch((const char *) (bp + 8 * NR + 16), _MM_HINT_T0);
        if ((p & 3) == 0 && (p >> 2) < nc) _mm_prefetch((const char *) (c + ((p >> 2) >> 1) * ldc + ((p >> 2) & 1) * off2), _MM_HINT_T0);
        if (WT && (p & pevery) == 0 && pcols > 0) {
            _mm_prefetch(pp + poff, _MM_HINT_T1);
            poff += 64;
            if (poff >= pbytes) {
                poff = 0;
                pp += pld;
                pcols--;
            }
        }
#pragma GCC unroll 14
        for (int r = 0; r < R; r++) {
            __m512 a = _mm512_set1_ps(WT ? ap[r * GK_WT_LD + p] : ap[r]);
            c0[r] = _mm512_fmadd_ps(a, b0, c0[r]);
            c1[r] = _mm512_fmadd_ps(a, b1, c1[r]);
        }
        if (!WT) ap += MR;
        bp += NR;
    }
    if (WT) {
        pf->p = pp;
        pf->off = poff;
        pf->cols = pcols;
    }
}

/*
 * R x 32 rows of the 14 x 32 tile (a panels keep their 14-row stride): R < 14 only for the last rows
 * of M. c is re-read per K block, so its rows are prefetched.
 */
AI void tile_f32_t(const int R, int64_t kc, const float *ap, const float *bp, float *c, int64_t ldc, int accumulate, const float *rs, float cs) {
    __m512 c0[MR], c1[MR];
    tile_loop(R, 0, kc, ap, bp, c, ldc, accumulate ? 2 * R : 0, 16, NULL, c0, c1);
#pragma GCC unroll 14
    for (int r = 0; r < R; r++) store_tile_row(c + r * ldc, c0[r], c1[r], accumulate, rs, cs, r);
}

static void tile_f32(int64_t kc, const float *ap, const float *bp, float *c, int64_t ldc, int accumulate, const float *rs, float cs) {
    tile_f32_t(MR, kc, ap, bp, c, ldc, accumulate, rs, cs);
}

static void tile_f32_rows(int h, int64_t kc, const float *ap, const float *bp, float *c, int64_t ldc, int accumulate, const float *rs, float cs) {
#define TR(R) case R: tile_f32_t(R, kc, ap, bp, c, ldc, accumulate, rs, cs); break;
    switch (h) { TR(1) TR(2) TR(3) TR(4) TR(5) TR(6) TR(7) TR(8) TR(9) TR(10) TR(11) TR(12) TR(13) TR(14) default: break; }
#undef TR
}

static void tile_bf16(int64_t kq, const uint32_t *ap, const uint32_t *bp, float *c, int64_t ldc, int accumulate, const float *rs, float cs) {
    __m512 c0[MR], c1[MR];
#pragma GCC unroll 14
    for (int r = 0; r < MR; r++) c0[r] = c1[r] = _mm512_setzero_ps();
    for (int64_t q = 0; q < kq; q++) {
        __m512bh b0 = (__m512bh) _mm512_load_si512(bp), b1 = (__m512bh) _mm512_load_si512(bp + 16);
        _mm_prefetch((const char *) (bp + 8 * NR), _MM_HINT_T0);
#pragma GCC unroll 14
        for (int r = 0; r < MR; r++) {
            __m512bh a = (__m512bh) _mm512_set1_epi32((int) ap[r]);
            c0[r] = _mm512_dpbf16_ps(c0[r], a, b0);
            c1[r] = _mm512_dpbf16_ps(c1[r], a, b1);
        }
        ap += MR;
        bp += NR;
    }
#pragma GCC unroll 14
    for (int r = 0; r < MR; r++) store_tile_row(c + r * ldc, c0[r], c1[r], accumulate, rs, cs, r);
}

/* ---- small M ---- */

AI __m512 load_w16(const char *b, int64_t off, __mmask16 m, int bf) {
    if (bf) return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(m, (const uint16_t *) b + off)), 16));
    return _mm512_maskz_loadu_ps(m, (const float *) b + off);
}

/* lane i = the sum of the lanes of v[i]: 30 shuffles and 15 adds instead of 16 separate reductions */
AI __m512 reduce16(const __m512 v[16]) {
    __m512 t[8], u[4], w[2];
#pragma GCC unroll 8
    for (int i = 0; i < 8; i++) t[i] = _mm512_add_ps(_mm512_unpacklo_ps(v[2 * i], v[2 * i + 1]), _mm512_unpackhi_ps(v[2 * i], v[2 * i + 1]));
#pragma GCC unroll 4
    for (int i = 0; i < 4; i++) {
        __m512d a = _mm512_castps_pd(t[2 * i]), b = _mm512_castps_pd(t[2 * i + 1]);
        u[i] = _mm512_add_ps(_mm512_castpd_ps(_mm512_unpacklo_pd(a, b)), _mm512_castpd_ps(_mm512_unpackhi_pd(a, b)));
    }
#pragma GCC unroll 2
    for (int i = 0; i < 2; i++)
        w[i] = _mm512_add_ps(_mm512_shuffle_f32x4(u[2 * i], u[2 * i + 1], 0x88), _mm512_shuffle_f32x4(u[2 * i], u[2 * i + 1], 0xDD));
    return _mm512_add_ps(_mm512_shuffle_f32x4(w[0], w[1], 0x88), _mm512_shuffle_f32x4(w[0], w[1], 0xDD));
}

/*
 * two weight columns at a time so each load of a feeds two FMAs; the next pair's columns are
 * prefetched (over 4 rows K comes in slices, so each column is a short stream the hardware
 * prefetchers do not pick up in time)
 */
AI void gemv_f32_t(const int MC, const int BF, int64_t n, int64_t k, const float *a, int64_t lda, const char *b, int64_t ldb, float *c, int64_t ldc) {
    const int isz = BF ? 2 : 4;
    for (int64_t j = 0; j < n; j += 2) {
        const char *w0 = b + j * ldb * isz, *w1 = j + 1 < n ? w0 + ldb * isz : w0;
        const char *pf = j + 3 < n ? w0 + 2 * ldb * isz : w0;
        const int64_t ldbb = ldb * isz;
        __m512 s0[8], s1[8];
#pragma GCC unroll 8
        for (int m = 0; m < MC; m++) s0[m] = s1[m] = _mm512_setzero_ps();
        for (int64_t p = 0; p < k; p += 16) {
            __mmask16 mk = k - p >= 16 ? (__mmask16) 0xFFFF : (__mmask16) ((1u << (k - p)) - 1);
            if (!BF || (p & 31) == 0) {
                _mm_prefetch(pf + p * isz, _MM_HINT_T0);
                _mm_prefetch(pf + ldbb + p * isz, _MM_HINT_T0);
            }
            __m512 x0 = load_w16(w0, p, mk, BF), x1 = load_w16(w1, p, mk, BF);
#pragma GCC unroll 8
            for (int m = 0; m < MC; m++) {
                __m512 av = _mm512_loadu_ps(a + m * lda + p);
                s0[m] = _mm512_fmadd_ps(av, x0, s0[m]);
                s1[m] = _mm512_fmadd_ps(av, x1, s1[m]);
            }
        }
        if (MC >= 3) {
            __m512 v[16];
#pragma GCC unroll 8
            for (int m = 0; m < 8; m++) {
                v[m] = m < MC ? s0[m] : _mm512_setzero_ps();
                v[8 + m] = m < MC ? s1[m] : _mm512_setzero_ps();
            }
            float r[16];
            _mm512_storeu_ps(r, reduce16(v));
#pragma GCC unroll 8
            for (int m = 0; m < MC; m++) {
                c[m * ldc + j] = r[m];
                if (j + 1 < n) c[m * ldc + j + 1] = r[8 + m];
            }
            continue;
        }
#pragma GCC unroll 8
        for (int m = 0; m < MC; m++) {
            c[m * ldc + j] = _mm512_reduce_add_ps(s0[m]);
            if (j + 1 < n) c[m * ldc + j + 1] = _mm512_reduce_add_ps(s1[m]);
        }
    }
}

static void gemv_f32(int mc, int64_t n, int64_t k, const float *a, int64_t lda, const char *b, int64_t ldb, int32_t tb, float *c, int64_t ldc) {
    int bf = tb == SIPU_BF16;
#define GV(M) case M: { if (bf) gemv_f32_t(M, 1, n, k, a, lda, b, ldb, c, ldc); else gemv_f32_t(M, 0, n, k, a, lda, b, ldb, c, ldc); } break;
    switch (mc) { GV(1) GV(2) GV(3) GV(4) GV(5) GV(6) GV(7) GV(8) default: break; }
#undef GV
}


AI __m512bh load_w32(const uint8_t *w, int64_t p, __mmask32 mk, const int FP8) {
    return FP8 ? (__m512bh) sipu_e4m3x32_to_bf16(_mm256_maskz_loadu_epi8(mk, w + p)) : (__m512bh) _mm512_maskz_loadu_epi16(mk, (const uint16_t *) w + p);
}

/*
 * NC weight columns at a time so each load of a feeds NC dots (several independent chains hide the
 * dot latency); fp8 keeps a per-block partial next to the scaled total.
 */
AI void gemv_bf16_t(const int MC, const int NCOL, const int DEC, const int FP8, int64_t n, int64_t k, const uint16_t *a, int64_t lda,
                    const uint8_t *b, int64_t ldb, float *c, int64_t ldc, const float *as, int64_t ldas, const float *bs) {
    const int isz = DEC ? 1 : 2;
    for (int64_t j = 0; j < n; j += NCOL) {
        const uint8_t *w[4];
#pragma GCC unroll 4
        for (int q = 0; q < NCOL; q++) w[q] = b + (j + q < n ? j + q : j) * ldb * isz;
        __m512 acc[4][4], part[4][4];
#pragma GCC unroll 4
        for (int m = 0; m < MC; m++)
#pragma GCC unroll 4
            for (int q = 0; q < NCOL; q++) acc[m][q] = part[m][q] = _mm512_setzero_ps();
        for (int64_t p = 0; p < k; p += 32) {
            __mmask32 mk = k - p >= 32 ? (__mmask32) 0xFFFFFFFFu : (__mmask32) ((1u << (k - p)) - 1);
            __m512bh x[4];
#pragma GCC unroll 4
            for (int q = 0; q < NCOL; q++) x[q] = load_w32(w[q], p, mk, DEC);
#pragma GCC unroll 4
            for (int m = 0; m < MC; m++) {
                __m512bh av = (__m512bh) _mm512_loadu_si512(a + m * lda + p);
#pragma GCC unroll 4
                for (int q = 0; q < NCOL; q++) part[m][q] = _mm512_dpbf16_ps(part[m][q], av, x[q]);
            }
            if (FP8 && ((p + 32) % GK_SCALE_BLOCK == 0 || p + 32 >= k)) {
                int64_t kb = p / GK_SCALE_BLOCK;
                __m512 t = _mm512_set1_ps(bs[kb]);
#pragma GCC unroll 4
                for (int m = 0; m < MC; m++) {
                    __m512 s = _mm512_set1_ps(as[m * ldas + kb]);
#pragma GCC unroll 4
                    for (int q = 0; q < NCOL; q++) {
                        acc[m][q] = _mm512_fmadd_ps(_mm512_mul_ps(part[m][q], s), t, acc[m][q]);
                        part[m][q] = _mm512_setzero_ps();
                    }
                }
            }
        }
#pragma GCC unroll 4
        for (int m = 0; m < MC; m++)
#pragma GCC unroll 4
            for (int q = 0; q < NCOL; q++)
                if (j + q < n) c[m * ldc + j + q] = _mm512_reduce_add_ps(FP8 ? acc[m][q] : part[m][q]);
    }
}

static void gemv_bf16(int mc, int64_t n, int64_t k, const uint16_t *a, int64_t lda, const uint8_t *b, int64_t ldb, int32_t tb,
                      float *c, int64_t ldc, const float *as, int64_t ldas, const float *bs, int64_t ldbs) {
    (void) ldbs;
    int fp8 = tb == SIPU_F8E4M3FN;
    /* over 4 rows, decode the e4m3 columns once into bf16 (L2-resident) instead of once per 4 rows */
    uint16_t *dec = NULL;
    int64_t kp = (k + 31) / 32 * 32;
    if (fp8 && mc > 4 && (dec = aligned_alloc(64, (size_t) (n * kp) * 2))) {
        for (int64_t j = 0; j < n; j++)
            for (int64_t p = 0; p < k; p += 32) {
                __mmask32 mk = k - p >= 32 ? (__mmask32) 0xFFFFFFFFu : (__mmask32) ((1u << (k - p)) - 1);
                _mm512_store_si512(dec + j * kp + p, sipu_e4m3x32_to_bf16(_mm256_maskz_loadu_epi8(mk, b + j * ldb + p)));
            }
    }
    /* rows four at a time: 4 x 4 sums (bf16) or 4 x 2 sums plus partials (fp8) stay in registers */
    for (int m0 = 0; m0 < mc; m0 += 4) {
        int h = mc - m0 < 4 ? mc - m0 : 4;
        const uint16_t *am = a + m0 * lda;
        float *cm = c + m0 * ldc;
        const float *asm_ = as ? as + m0 * ldas : NULL;
        const uint8_t *bd = (const uint8_t *) dec;
#define GV(M) case M: { if (dec) gemv_bf16_t(M, 2, 0, 1, n, k, am, lda, bd, kp, cm, ldc, asm_, ldas, bs); \
                        else if (fp8) gemv_bf16_t(M, 2, 1, 1, n, k, am, lda, b, ldb, cm, ldc, asm_, ldas, bs); \
                        else gemv_bf16_t(M, 4, 0, 0, n, k, am, lda, b, ldb, cm, ldc, asm_, ldas, bs); } break;
        switch (h) { GV(1) GV(2) GV(3) GV(4) default: break; }
#undef GV
    }
    free(dec);
}

/* ---- packing K-contiguous columns: 16 columns x 16 words per 16 x 16 transpose ---- */

/* 16 words of column src (kind) starting at word i0 of kc elements, zero beyond */
AI __m512i load_words(int kind, const void *src, int64_t i0, int64_t kc) {
    if (kind == GK_PK_F32 || kind == GK_PK_BF16_F32) {
        int64_t n = kc - i0;
        __mmask16 m = n >= 16 ? (__mmask16) 0xFFFF : n <= 0 ? 0 : (__mmask16) ((1u << n) - 1);
        if (kind == GK_PK_F32) return _mm512_castps_si512(_mm512_maskz_loadu_ps(m, (const float *) src + i0));
        return _mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(m, (const uint16_t *) src + i0)), 16);
    }
    int64_t n = kc - 2 * i0;
    __mmask32 m = n >= 32 ? (__mmask32) 0xFFFFFFFFu : n <= 0 ? 0 : (__mmask32) ((1u << n) - 1);
    if (kind == GK_PK_BF16) return _mm512_maskz_loadu_epi16(m, (const uint16_t *) src + 2 * i0);
    return sipu_e4m3x32_to_bf16(_mm256_maskz_loadu_epi8(m, (const uint8_t *) src + 2 * i0));
}

static void pack_kt(int kind, const void *src, int64_t ld, int64_t kc, int w, uint32_t *panel, int nr, int64_t rows) {
    const int isz = kind == GK_PK_F32 ? 4 : kind == GK_PK_E4M3 ? 1 : 2;
    const int wb = kind == GK_PK_F32 || kind == GK_PK_BF16 ? 4 : 2; /* source bytes per word */
    for (int g = 0; g < nr; g += 16) {
        __mmask16 sm = nr - g >= 16 ? (__mmask16) 0xFFFF : (__mmask16) ((1u << (nr - g)) - 1);
        /*
         * the next 16 columns (a short stream each: kc elements) are prefetched a group ahead; past w
         * they are the next panel's (a prefetch never faults, even past the end of b)
         */
        int pg = g + 16;
        for (int64_t i0 = 0; i0 < rows; i0 += 16) {
            __m512i r[16];
            if ((i0 * wb) % 64 == 0)
                for (int j = pg; j < pg + 16; j++) _mm_prefetch((const char *) src + j * ld * isz + i0 * wb, _MM_HINT_T0);
#pragma GCC unroll 16
            for (int j = 0; j < 16; j++)
                r[j] = g + j < w ? load_words(kind, (const char *) src + (g + j) * ld * isz, i0, kc) : _mm512_setzero_si512();
            sipu_transpose16(r);
            int h = rows - i0 < 16 ? (int) (rows - i0) : 16;
            for (int i = 0; i < h; i++) _mm512_mask_storeu_epi32(panel + (i0 + i) * nr + g, sm, r[i]);
        }
    }
}

static void interleave_bf16(const uint16_t *r0, const uint16_t *r1, int w, uint32_t *dst, int nr) {
    const __m512i lo = _mm512_set_epi16(47, 15, 46, 14, 45, 13, 44, 12, 43, 11, 42, 10, 41, 9, 40, 8, 39, 7, 38, 6, 37, 5, 36, 4, 35, 3, 34, 2, 33, 1, 32, 0);
    const __m512i hi = _mm512_add_epi16(lo, _mm512_set1_epi16(16));
    for (int c = 0; c < nr; c += 32) {
        int n = w - c;
        __mmask32 m = n >= 32 ? (__mmask32) 0xFFFFFFFFu : n <= 0 ? 0 : (__mmask32) ((1u << n) - 1);
        __m512i a = _mm512_maskz_loadu_epi16(m, r0 + c), b = _mm512_maskz_loadu_epi16(m, r1 + c);
        _mm512_storeu_si512(dst + c, _mm512_permutex2var_epi16(a, lo, b));
        _mm512_storeu_si512(dst + c + 16, _mm512_permutex2var_epi16(a, hi, b));
    }
}

/* ---- linear layers in fp32: C^T = W a^T (see gk_tile_wt) ---- */

/* c[m * ldc + r] = acc[r] lane m for m < mrows, r < R: a 16 x 16 transpose turns the weight rows into columns of c */
AI void store_wt16(const int R, const __m512 acc[MR], int mrows, float *c, int64_t ldc) {
    __m512i t[16];
#pragma GCC unroll 16
    for (int r = 0; r < 16; r++) t[r] = r < R ? _mm512_castps_si512(acc[r]) : _mm512_setzero_si512();
    sipu_transpose16(t);
    const __mmask16 mk = (__mmask16) ((1u << R) - 1);
    for (int m = 0; m < mrows && m < 16; m++) _mm512_mask_storeu_ps(c + m * ldc, mk, _mm512_castsi512_ps(t[m]));
}

AI void tile_wt_t(const int R, int64_t kc, const float *wp, const float *bp, float *ct, int64_t ldct, int accumulate, float *c, int64_t ldc,
                  int mrows, gk_pf *pf) {
    __m512 c0[MR], c1[MR];
    if (!c) {
        tile_loop(R, 1, kc, wp, bp, ct, ldct, accumulate ? 2 * R : 0, 16, pf, c0, c1);
#pragma GCC unroll 14
        for (int r = 0; r < R; r++) store_tile_row(ct + r * ldct, c0[r], c1[r], accumulate, NULL, 1.0f, r);
        return;
    }
    tile_loop(R, 1, kc, wp, bp, c, ldc, 2 * mrows, R - 1, pf, c0, c1);
    if (accumulate)
#pragma GCC unroll 14
        for (int r = 0; r < R; r++) {
            c0[r] = _mm512_add_ps(_mm512_load_ps(ct + r * ldct), c0[r]);
            c1[r] = _mm512_add_ps(_mm512_load_ps(ct + r * ldct + 16), c1[r]);
        }
    store_wt16(R, c0, mrows, c, ldc);
    if (mrows > 16) store_wt16(R, c1, mrows - 16, c + 16 * ldc, ldc);
}

static void tile_wt(int h, int64_t kc, const float *wp, const float *bp, float *ct, int64_t ldct, int accumulate, float *c, int64_t ldc,
                    int mrows, gk_pf *pf) {
#define TR(R) case R: tile_wt_t(R, kc, wp, bp, ct, ldct, accumulate, c, ldc, mrows, pf); break;
    switch (h) { TR(1) TR(2) TR(3) TR(4) TR(5) TR(6) TR(7) TR(8) TR(9) TR(10) TR(11) TR(12) TR(13) TR(14) default: break; }
#undef TR
}

const gk_isa sipu_gk_avx512 = {"avx512", MR, NR, tile_f32, NULL, gemv_f32, NULL, pack_kt, interleave_bf16, tile_f32_rows, tile_wt};
const gk_isa sipu_gk_avx512_bf16 = {"avx512_bf16", MR, NR, tile_f32, tile_bf16, gemv_f32, gemv_bf16, pack_kt, interleave_bf16, tile_f32_rows, tile_wt};
