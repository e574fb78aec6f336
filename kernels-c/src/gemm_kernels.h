/*
 * Packed, register-blocked GEMM behind sipu_matmul and sipu_fp8_gemm.
 *
 * One driver (gemm_kernels.c) splits the product over threads, blocks it for the caches (KC x NC
 * panels of B, MC x KC blocks of A, each thread its own buffers) and packs the operands into the
 * layout of the microkernels of the running ISA (gemm_avx2.c, gemm_avx512.c, plain C otherwise).
 * Small M with K-contiguous weights (linear layers at decode) streams the weights once instead.
 */
#ifndef SIPU_GEMM_KERNELS_H
#define SIPU_GEMM_KERNELS_H

#include "internal.h"

#define GK_MAX_MR 32
#define GK_MAX_NR 32
/* the K block of DeepSeek's fp8 scales */
#define GK_SCALE_BLOCK 128

/*
 * c[MR x NR] = (accumulate ? c : 0) + (rs ? (part * rs[r]) * cs : part), part the product of the
 * packed panels: f32 kernels take ap[p * MR + r], bp[p * NR + j] over kc steps; bf16 kernels take
 * pairs of K, ap[q * MR + r] and bp[q * NR + j] each two bf16 (low = even k), over kq pairs.
 */
/*
 * A prefetch stream the AVX-512 f32 tile walks while it computes, one line (to L2) every K step p
 * with (p & every) == 0: cols columns (bytes each, column stride ld) of b that the driver copies
 * next. every is set from the steps there are for the lines: a denser stream than needed fills the
 * line fill buffers with memory misses and stalls the tile (measured: -8 % at one line per 2 steps).
 */
typedef struct {
    const char *p;
    int64_t ld, bytes, off;
    int cols, every;
} gk_pf;
typedef void (*gk_tile_f32)(int64_t kc, const float *ap, const float *bp, float *c, int64_t ldc, int accumulate, const float *rs, float cs);
/*
 * Linear layers in fp32, C^T = W a^T: the weight rows take the broadcast side of the FMA tile, so
 * they are copied as they lie (K contiguous, no transpose): wp holds h <= mr rows of kc <= GK_KC_F32
 * floats at the fixed stride GK_WT_LD (a displacement, so no register per row); bp is a^T, [kc][32]
 * (32 rows of a, zero beyond M). The partial sums before the last K steps go to ct[r * ldct + m]
 * (32 m, += with accumulate; ct 64-byte aligned): rows of C^T, so no transposes per call and no
 * c rows 8 KiB apart. With c (the last K steps) the tile stores c[m * ldc + r] = (accumulate ? ct :
 * 0) + its product for m < mrows, r < h instead. Walks the prefetch stream pf (the next weight rows).
 */
#define GK_KC_F32 576
#define GK_WT_LD (GK_KC_F32 + 16) /* + one line: rows a multiple of 4 KiB apart would share L1 sets */
#define GK_WT_NR 32
typedef void (*gk_tile_wt)(int h, int64_t kc, const float *wp, const float *bp, float *ct, int64_t ldct, int accumulate, float *c,
                           int64_t ldc, int mrows, gk_pf *pf);
typedef void (*gk_tile_bf16)(int64_t kq, const uint32_t *ap, const uint32_t *bp, float *c, int64_t ldc, int accumulate, const float *rs, float cs);
/*
 * Small-M product with K-contiguous weights: c[m * ldc + j] = sum_k a[m * lda + k] * w(j, k) for
 * m < mc (mc <= 8), j < n, w(j, k) = b[j * ldb + k] of dtype tb. a is fp32 (f32 kernel) or bf16 pairs
 * (bf16 kernel), zero-padded to kpad (a multiple of 32) elements per row. With as/bs the sum is taken
 * per 128-wide K block and scaled: sum_kb (block * as[m * ldas + kb]) * bs[kb] (bs already the row of
 * the 128-column block of j).
 */
typedef void (*gk_gemv_f32)(int mc, int64_t n, int64_t k, const float *a, int64_t lda, const char *b, int64_t ldb, int32_t tb,
                            float *c, int64_t ldc);
typedef void (*gk_gemv_bf16)(int mc, int64_t n, int64_t k, const uint16_t *a, int64_t lda, const uint8_t *b, int64_t ldb, int32_t tb,
                             float *c, int64_t ldc, const float *as, int64_t ldas, const float *bs, int64_t ldbs);

/*
 * Packing of K-contiguous columns (the linear layout: column j of b at src + j * ld elements) into a
 * [rows][nr] panel of 32-bit words: f32 words, bf16 widened to f32 words, or pairs of K (low = even k)
 * of bf16 or of e4m3 decoded to bf16 (exact). kc elements of K per column; rows >= the words kc fills,
 * the rest and columns w..nr-1 zero.
 */
enum { GK_PK_F32, GK_PK_BF16_F32, GK_PK_BF16, GK_PK_E4M3 };
typedef void (*gk_pack_kt)(int kind, const void *src, int64_t ld, int64_t kc, int w, uint32_t *panel, int nr, int64_t rows);

typedef struct {
    const char *name;
    int mr, nr;                /* f32 tile */
    gk_tile_f32 f32;
    gk_tile_bf16 bf16;         /* 14 x 32; NULL without AVX512-BF16 */
    gk_gemv_f32 gemv_f32;      /* NULL: the plain C loop */
    gk_gemv_bf16 gemv_bf16;    /* NULL without AVX512-BF16 */
    gk_pack_kt pack_kt;        /* NULL: the plain C loops */
    /* dst[c] = r0[c] | r1[c] << 16 for c < w, zero for w <= c < nr (nr a multiple of 32); NULL: the plain C loop */
    void (*interleave_bf16)(const uint16_t *r0, const uint16_t *r1, int w, uint32_t *dst, int nr);
    /* the f32 tile for the first h < mr rows only (full width); NULL: a full tile into a buffer */
    void (*f32_rows)(int h, int64_t kc, const float *ap, const float *bp, float *c, int64_t ldc, int accumulate, const float *rs, float cs);
    /* the transposed f32 tile of linear layers (gk_tile_wt); NULL: the packed path */
    gk_tile_wt f32_wt;
} gk_isa;

extern const gk_isa sipu_gk_avx2, sipu_gk_avx512, sipu_gk_avx512_bf16;

/* The microkernels of the path sipu_simd() names (attention.c reuses the tiles). */
const gk_isa *sipu_gk_pick(void);

/*
 * AMX (gemm_amx.c, only where the CPU and the OS allow the tile registers): 32 x 32 tiles of bf16
 * pair dots over kq pairs of K (a multiple of 16, zero-padded), in steps of 16 pairs. a: step s at
 * ap + s * GK_AMX_STEP, its 32 rows of 16 words each contiguous (each tile load reads 1 KiB in a row,
 * no cache-set conflicts between rows); b: [kq][32] words as the bf16 kernels take. Each thread calls sipu_gk_amx_begin
 * before its first tile and sipu_gk_amx_end after its last.
 */
#define GK_AMX_MR 32
#define GK_AMX_NR 32
/* words of one K step (16 pairs) of an a or b panel */
#define GK_AMX_STEP (16 * 32)
void sipu_gk_amx_begin(void);
void sipu_gk_amx_end(void);
/* c[32 x 32] = (accumulate ? c : 0) + a b over kq pairs */
void sipu_gk_amx_tile(int64_t kq, const uint32_t *ap, const uint32_t *bp, float *c, int64_t ldc, int accumulate);
/* the same with a as 32 rows of kq words, row r at ap + r * kq (attention's bf16 rows of Q and P) */
void sipu_gk_amx_tile_rows(int64_t kq, const uint32_t *ap, const uint32_t *bp, float *c, int64_t ldc, int accumulate);
/* the same tile for fp8 over kq / 64 scale blocks (rounded up): rs [block][32] row scales, cs [block] column-block scales */
void sipu_gk_amx_tile_scaled(int64_t kq, const uint32_t *ap, const uint32_t *bp, float *c, int64_t ldc, int accumulate, const float *rs,
                             const float *cs);
/* scale blocks of one fp8 tile call at most (the deepest AMX K block, 4096) */
#define GK_AMX_FP8_BLOCKS 32
/* a rows packed for the AMX tile: h <= 32 rows of K-contiguous bf16 or e4m3 (kind GK_PK_BF16 / GK_PK_E4M3), row r at src + r * ld */
/*
 * Decode with K-contiguous weights w (bf16, or e4m3 with fp8 set), rows at w + n * ldw: c[m * ldc + n] =
 * sum_k a[m][k] w[n][k] for m < mc <= 16, n < nn <= 64. at: a^T as [kq][16] pair words (zero beyond mc
 * and K, kq = K rounded up to 128, halved). fp8: each 128-block scaled as (part * ast[kb * 16 + m]) * bs[kb].
 */
#define GK_AMX_DEC_M 16
#define GK_AMX_DEC_N 64
void sipu_gk_amx_decode(int fp8, int64_t nn, int64_t k, const uint32_t *at, const uint8_t *w, int64_t ldw, int mc, float *c, int64_t ldc,
                        const float *ast, const float *bs);
/* a b micro-panel for the AMX tile: w <= 32 K-contiguous bf16 or e4m3 columns (column j at src + j * ld) into [kqp][32] pair words, zero beyond */
void sipu_gk_amx_pack_b(int kind, const void *src, int64_t ld, int64_t kc, int w, uint32_t *panel, int64_t kqp);
void sipu_gk_amx_pack_a(int kind, const void *src, int64_t ld, int64_t kc, int h, uint32_t *panel, int64_t kq);

/* The GEMM of one matrix pair; b is read as K x N (element strides sb0 along K, sb1 along N). */
typedef struct {
    int64_t m, n, k;
    const char *a;
    int64_t sa0, sa1;
    int32_t ta;
    const char *b;
    int64_t sb0, sb1;
    int32_t tb;
    float *c; /* fp32 [m, n] row-major with row stride ldc, overwritten */
    int64_t ldc;
    /* fp8_gemm: a [m, k] and b^T [n, k] e4m3 with 128-block scales as [m, ldas], bs [ceil(n/128), ldbs]; else NULL */
    const float *as, *bs;
    int64_t ldas, ldbs;
} sipu_gemm_job;

/* Runs the job on the path of sipu_simd() (SIPU_SIMD may force a lower one); only fails for memory. */
sipu_status sipu_gemm_run(const sipu_gemm_job *job, const char *fn);

#endif
