/*
 * GEMM driver: thread split, cache blocking, packing, and the plain C microkernel (see gemm_kernels.h).
 *
 * Each thread owns a rectangle of C (a range of N when there are enough columns, else of M) and
 * runs the whole blocked loop on it with its own packing buffers, so threads never wait for each
 * other. Loop order (BLIS): NC columns -> KC deep panel of B packed -> MC rows of A packed ->
 * NR x MR register tiles. fp8_gemm fixes KC to the 128-wide scale block and scales each block's
 * partial sum as it is added, as DeepSeek's kernel does.
 */
#include "gemm_kernels.h"

#include "convert.h"

#include <stdlib.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#define NC 2048
#define MC_TARGET 336
/*
 * fp32 sums restart every SUM_F32 steps of K and are added to c in K order, the order main had with
 * K blocks of 192: any other order moves some fp32 results by an ulp, and the FP8 DeepSeek check
 * (activations quantized to e4m3 between layers) then flips ties (measured: blocks of 512 or 128
 * failed it). The cache blocks are deeper (KC_F32, whole sum blocks), because each block re-reads
 * and rewrites c from L2 or beyond, while the sum blocks inside it find c in L1: +5-10 % over 192
 * (1 thread, Xeon with 48 KiB L1 / 2 MiB L2). The B micro-panel (72 KiB) then streams from L2 with
 * the A panel, so MC is halved to keep the A block (387 KiB) well inside L2.
 */
#define SUM_F32 192
#define KC_F32 GK_KC_F32
#define MC_F32 168
/* bf16: B micro-panels of KC x 32 pairs (32 KiB) stay in L1 while A panels stream */
#define KC_BF16 256

/* ---- plain C microkernel (scalar path; the compiler may still vectorize it) ---- */

#define PMR 4
#define PNR 16

static void plain_f32(int64_t kc, const float *ap, const float *bp, float *c, int64_t ldc, int accumulate, const float *rs, float cs) {
    float acc[PMR][PNR] = {{0}};
    for (int64_t p = 0; p < kc; p++)
        for (int r = 0; r < PMR; r++) {
            float av = ap[p * PMR + r];
            for (int j = 0; j < PNR; j++) acc[r][j] += av * bp[p * PNR + j];
        }
    for (int r = 0; r < PMR; r++)
        for (int j = 0; j < PNR; j++) {
            float v = rs ? (acc[r][j] * rs[r]) * cs : acc[r][j];
            c[r * ldc + j] = accumulate ? c[r * ldc + j] + v : v;
        }
}

static const gk_isa gk_plain = {"scalar", PMR, PNR, plain_f32, NULL, NULL, NULL, NULL, NULL, NULL, NULL};

static const gk_isa *pick_isa(void) {
    switch (sipu_simd()) {
    case SIPU_SIMD_AVX512_BF16: return &sipu_gk_avx512_bf16;
    case SIPU_SIMD_AVX512: return &sipu_gk_avx512;
    case SIPU_SIMD_AVX2: return &sipu_gk_avx2;
    default: return &gk_plain;
    }
}

const gk_isa *sipu_gk_pick(void) { return pick_isa(); }

/* ---- element access ---- */

typedef struct {
    uint16_t e4m3_bf16[256]; /* e4m3 -> bf16 is exact (3-bit mantissa, exponent in range) */
} gk_tables;

static inline float get_f32(const char *base, int64_t off, int32_t t) {
    if (t == SIPU_F32) return ((const float *) base)[off];
    if (t == SIPU_BF16) return bf16_to_f32(((const uint16_t *) base)[off]);
    return load_f32(base + off * sipu_itemsize(t), t);
}

static inline uint32_t get_bf16(const gk_tables *tb, const char *base, int64_t off, int32_t t) {
    if (t == SIPU_BF16) return ((const uint16_t *) base)[off];
    if (t == SIPU_F8E4M3FN) return tb->e4m3_bf16[((const uint8_t *) base)[off]];
    return f32_to_bf16(load_f32(base + off * sipu_itemsize(t), t));
}

/* ---- packing ---- */

/* f32 panels of B: rows p0..p0+kc, columns n0..n0+nc, each NR-wide panel [kc][NR], zero beyond N. */
/*
 * row-major f32 b: each K row of a panel is a copy; taken row by row of b, so the reads are long
 * streams (by panels they were kc pieces of nr floats, a row stride apart: 5 % of 1024^3)
 */
static void pack_b_f32_rows(const sipu_gemm_job *j, int nr, int64_t p0, int64_t kc, int64_t n0, int64_t nc, float *bp) {
    const int64_t full = nc / nr * nr;
    if (full < nc) memset(bp + (full / nr) * kc * nr, 0, (size_t) (kc * nr) * sizeof(float));
    for (int64_t p = 0; p < kc; p++) {
        const float *row = (const float *) j->b + (p0 + p) * j->sb0 + n0;
        float *dst = bp + p * nr;
        int64_t jp = 0;
        if (nr == GK_MAX_NR)
            for (; jp < full; jp += GK_MAX_NR) memcpy(dst + (jp / nr) * kc * nr, row + jp, GK_MAX_NR * sizeof(float));
        for (; jp < nc; jp += nr) memcpy(dst + (jp / nr) * kc * nr, row + jp, (size_t) (nc - jp < nr ? nc - jp : nr) * sizeof(float));
    }
}

static void pack_b_f32(const sipu_gemm_job *j, const gk_isa *isa, int nr, int64_t p0, int64_t kc, int64_t n0, int64_t nc, float *bp) {
    if (j->sb1 == 1 && j->tb == SIPU_F32) {
        pack_b_f32_rows(j, nr, p0, kc, n0, nc, bp);
        return;
    }
    for (int64_t jp = 0; jp < nc; jp += nr) {
        float *panel = bp + (jp / nr) * kc * nr;
        int w = (int) (nc - jp < nr ? nc - jp : nr);
        if (isa->pack_kt && j->sb0 == 1 && j->sb1 != 1 && (j->tb == SIPU_F32 || j->tb == SIPU_BF16)) {
            int isz = sipu_itemsize(j->tb);
            isa->pack_kt(j->tb == SIPU_F32 ? GK_PK_F32 : GK_PK_BF16_F32, j->b + ((n0 + jp) * j->sb1 + p0) * isz, j->sb1, kc, w,
                         (uint32_t *) panel, nr, kc);
            continue;
        }
        if (w < nr) memset(panel, 0, (size_t) (kc * nr) * sizeof(float));
        if (j->sb0 == 1 && j->sb1 != 1) {
            for (int jj = 0; jj < w; jj++)
                for (int64_t p = 0; p < kc; p++) panel[p * nr + jj] = get_f32(j->b, p0 + p + (n0 + jp + jj) * j->sb1, j->tb);
        } else {
            for (int64_t p = 0; p < kc; p++)
                for (int jj = 0; jj < w; jj++) panel[p * nr + jj] = get_f32(j->b, (p0 + p) * j->sb0 + (n0 + jp + jj) * j->sb1, j->tb);
        }
    }
}

/* f32 panels of A: rows m0..m0+mc, K p0..p0+kc, each MR-tall panel [kc][MR], zero beyond M. */
static void pack_a_f32(const sipu_gemm_job *j, const gk_isa *isa, int mr, int64_t m0, int64_t mc, int64_t p0, int64_t kc, float *ap) {
    for (int64_t ip = 0; ip < mc; ip += mr) {
        float *panel = ap + (ip / mr) * kc * mr;
        int h = (int) (mc - ip < mr ? mc - ip : mr);
        if (isa->pack_kt && j->sa1 == 1 && (j->ta == SIPU_F32 || j->ta == SIPU_BF16)) {
            int isz = sipu_itemsize(j->ta);
            isa->pack_kt(j->ta == SIPU_F32 ? GK_PK_F32 : GK_PK_BF16_F32, j->a + ((m0 + ip) * j->sa0 + p0) * isz, j->sa0, kc, h,
                         (uint32_t *) panel, mr, kc);
            continue;
        }
        if (h < mr) memset(panel, 0, (size_t) (kc * mr) * sizeof(float));
        for (int r = 0; r < h; r++) {
            int64_t row = (m0 + ip + r) * j->sa0;
            for (int64_t p = 0; p < kc; p++) panel[p * mr + r] = get_f32(j->a, row + (p0 + p) * j->sa1, j->ta);
        }
    }
}

/* bf16 pair panels of B: [kqp][NR] of (b[2q][n], b[2q+1][n]), zero beyond K and N (kqp >= the kq pairs of kc). */
static void pack_b_bf16(const sipu_gemm_job *j, const gk_isa *isa, const gk_tables *tb, int nr, int64_t p0, int64_t kc, int64_t kqp, int64_t n0,
                        int64_t nc, uint32_t *bp) {
    int64_t kq = (kc + 1) / 2;
    for (int64_t jp = 0; jp < nc; jp += nr) {
        uint32_t *panel = bp + (jp / nr) * kqp * nr;
        int w = (int) (nc - jp < nr ? nc - jp : nr);
        if (isa->pack_kt && j->sb0 == 1 && j->sb1 != 1 && (j->tb == SIPU_BF16 || j->tb == SIPU_F8E4M3FN)) {
            int isz = sipu_itemsize(j->tb);
            isa->pack_kt(j->tb == SIPU_BF16 ? GK_PK_BF16 : GK_PK_E4M3, j->b + ((n0 + jp) * j->sb1 + p0) * isz, j->sb1, kc, w, panel, nr, kqp);
            continue;
        }
        if (w < nr || (kc & 1) || kqp > kq) memset(panel, 0, (size_t) (kqp * nr) * sizeof(uint32_t));
        if (j->sb0 == 1 && j->sb1 != 1 && j->tb == SIPU_BF16) {
            /* weights [N, K]: a pair of K is already one 32-bit word */
            for (int jj = 0; jj < w; jj++) {
                const uint16_t *col = (const uint16_t *) j->b + (n0 + jp + jj) * j->sb1 + p0;
                int64_t q = 0;
                for (; 2 * q + 1 < kc; q++) memcpy(panel + q * nr + jj, col + 2 * q, 4);
                if (kc & 1) panel[q * nr + jj] = col[2 * q];
            }
        } else if (j->sb0 == 1 && j->sb1 != 1 && j->tb == SIPU_F8E4M3FN) {
            for (int jj = 0; jj < w; jj++) {
                const uint8_t *col = (const uint8_t *) j->b + (n0 + jp + jj) * j->sb1 + p0;
                int64_t q = 0;
                for (; 2 * q + 1 < kc; q++) panel[q * nr + jj] = tb->e4m3_bf16[col[2 * q]] | (uint32_t) tb->e4m3_bf16[col[2 * q + 1]] << 16;
                if (kc & 1) panel[q * nr + jj] = tb->e4m3_bf16[col[2 * q]];
            }
        } else if (j->sb0 == 1 && j->sb1 != 1) {
            for (int jj = 0; jj < w; jj++) {
                int64_t col = (n0 + jp + jj) * j->sb1 + p0;
                int64_t q = 0;
                for (; 2 * q + 1 < kc; q++)
                    panel[q * nr + jj] = get_bf16(tb, j->b, col + 2 * q, j->tb) | get_bf16(tb, j->b, col + 2 * q + 1, j->tb) << 16;
                if (kc & 1) panel[q * nr + jj] = get_bf16(tb, j->b, col + 2 * q, j->tb);
            }
        } else if (j->sb1 == 1 && j->tb == SIPU_BF16 && isa->interleave_bf16 && !(kc & 1)) {
            /* row-major b: rows 2q and 2q + 1 interleaved into pairs */
            const uint16_t *src = (const uint16_t *) j->b + p0 * j->sb0 + n0 + jp;
            for (int64_t q = 0; q < kq; q++) isa->interleave_bf16(src + 2 * q * j->sb0, src + (2 * q + 1) * j->sb0, w, panel + q * nr, nr);
        } else {
            for (int64_t p = 0; p < kc; p++) {
                uint16_t *row = (uint16_t *) (panel + (p / 2) * nr) + (p & 1);
                for (int jj = 0; jj < w; jj++) row[2 * jj] = (uint16_t) get_bf16(tb, j->b, (p0 + p) * j->sb0 + (n0 + jp + jj) * j->sb1, j->tb);
            }
        }
    }
}

static void pack_a_bf16(const sipu_gemm_job *j, const gk_tables *tb, int mr, int64_t m0, int64_t mc, int64_t p0, int64_t kc, uint32_t *ap) {
    int64_t kq = (kc + 1) / 2;
    for (int64_t ip = 0; ip < mc; ip += mr) {
        uint32_t *panel = ap + (ip / mr) * kq * mr;
        int h = (int) (mc - ip < mr ? mc - ip : mr);
        if (h < mr || (kc & 1)) memset(panel, 0, (size_t) (kq * mr) * sizeof(uint32_t));
        for (int r = 0; r < h; r++) {
            uint16_t *dst = (uint16_t *) panel + 2 * r;
            int64_t row = (m0 + ip + r) * j->sa0;
            if (j->sa1 == 1 && j->ta == SIPU_BF16) {
                const uint16_t *src = (const uint16_t *) j->a + row + p0;
                int64_t q = 0;
                for (; 2 * q + 1 < kc; q++) memcpy(panel + q * mr + r, src + 2 * q, 4);
                if (kc & 1) dst[q * 2 * mr] = src[2 * q];
                continue;
            }
            for (int64_t p = 0; p < kc; p++) dst[(p / 2) * 2 * mr + (p & 1)] = (uint16_t) get_bf16(tb, j->a, row + (p0 + p) * j->sa1, j->ta);
        }
    }
}

/* AMX a panels: steps of 16 pairs of K, 32 rows each (gemm_kernels.h), zero beyond M and K. */
static void pack_a_amx(const sipu_gemm_job *j, const gk_tables *tb, int64_t m0, int64_t mc, int64_t p0, int64_t kc, int64_t kqp, uint32_t *ap) {
    for (int64_t ip = 0; ip < mc; ip += GK_AMX_MR) {
        uint32_t *panel = ap + (ip / GK_AMX_MR) * kqp * GK_AMX_MR;
        int h = (int) (mc - ip < GK_AMX_MR ? mc - ip : GK_AMX_MR);
        if (j->sa1 == 1 && (j->ta == SIPU_BF16 || j->ta == SIPU_F8E4M3FN)) {
            int isz = sipu_itemsize(j->ta);
            sipu_gk_amx_pack_a(j->ta == SIPU_BF16 ? GK_PK_BF16 : GK_PK_E4M3, j->a + ((m0 + ip) * j->sa0 + p0) * isz, j->sa0, kc, h, panel, kqp);
            continue;
        }
        memset(panel, 0, (size_t) (kqp * GK_AMX_MR) * sizeof(uint32_t));
        for (int r = 0; r < h; r++) {
            int64_t row = (m0 + ip + r) * j->sa0;
            for (int64_t p = 0; p < kc; p++)
                ((uint16_t *) (panel + (p / 32) * GK_AMX_STEP + r * 16))[p % 32] = (uint16_t) get_bf16(tb, j->a, row + (p0 + p) * j->sa1, j->ta);
        }
    }
}

/* ---- the blocked loop over one thread's rectangle ---- */

typedef struct {
    const sipu_gemm_job *job;
    const gk_isa *isa;
    const gk_tables *tables;
    bool bf, amx;
    int mr, nr;
    int64_t kc, mc;
} plan;

/* the f32 tile at (c, h x w) over one K block, by sum blocks (see SUM_F32); edge tiles through a buffer */
static void tile_f32_block(const plan *pl, int64_t kc, const float *ap, const float *bp, float *c, int h, int w, bool acc, const float *rs,
                           float cs) {
    const gk_isa *isa = pl->isa;
    const int mr = pl->mr, nr = pl->nr;
    const int64_t ldc = pl->job->ldc;
    float tmp[GK_MAX_MR * GK_MAX_NR];
    for (int64_t q = 0; q < kc; q += SUM_F32) {
        const int64_t kq = kc - q < SUM_F32 ? kc - q : SUM_F32;
        const float *a = ap + q * mr, *b = bp + q * nr;
        const bool add = acc || q > 0;
        if (h == mr && w == nr) {
            isa->f32(kq, a, b, c, ldc, add, rs, cs);
        } else if (w == nr && isa->f32_rows) {
            isa->f32_rows(h, kq, a, b, c, ldc, add, rs, cs); /* the last rows of M: only h rows computed */
        } else {
            isa->f32(kq, a, b, tmp, nr, 0, rs, cs);
            for (int r = 0; r < h; r++)
                for (int jj = 0; jj < w; jj++) c[r * ldc + jj] = add ? c[r * ldc + jj] + tmp[r * nr + jj] : tmp[r * nr + jj];
        }
    }
}

static void run_rect(const plan *pl, int64_t m0, int64_t m1, int64_t n0, int64_t n1, void *abuf, void *bbuf) {
    const sipu_gemm_job *j = pl->job;
    const int mr = pl->mr, nr = pl->nr;
    const bool scaled = j->as != NULL;
    float tmp[GK_MAX_MR * GK_MAX_NR];
    float rs[GK_MAX_MR];
    for (int64_t jc = n0; jc < n1; jc += NC) {
        int64_t nc = n1 - jc < NC ? n1 - jc : NC;
        for (int64_t pc = 0; pc < j->k; pc += pl->kc) {
            int64_t kc = j->k - pc < pl->kc ? j->k - pc : pl->kc, kq = (kc + 1) / 2, kb = pc / GK_SCALE_BLOCK;
            if (pl->bf) pack_b_bf16(j, pl->isa, pl->tables, nr, pc, kc, kq, jc, nc, bbuf);
            else pack_b_f32(j, pl->isa, nr, pc, kc, jc, nc, bbuf);
            for (int64_t ic = m0; ic < m1; ic += pl->mc) {
                int64_t mc = m1 - ic < pl->mc ? m1 - ic : pl->mc;
                if (pl->bf) pack_a_bf16(j, pl->tables, mr, ic, mc, pc, kc, abuf);
                else pack_a_f32(j, pl->isa, mr, ic, mc, pc, kc, abuf);
                for (int64_t jr = 0; jr < nc; jr += nr) {
                    int w = (int) (nc - jr < nr ? nc - jr : nr);
                    float cs = scaled ? j->bs[((jc + jr) / GK_SCALE_BLOCK) * j->ldbs + kb] : 1.0f;
                    for (int64_t ir = 0; ir < mc; ir += mr) {
                        int h = (int) (mc - ir < mr ? mc - ir : mr);
                        if (scaled)
                            for (int r = 0; r < mr; r++) rs[r] = r < h ? j->as[(ic + ir + r) * j->ldas + kb] : 0.0f;
                        float *c = j->c + (ic + ir) * j->ldc + jc + jr;
                        int acc = pc > 0;
                        bool full = h == mr && w == nr;
                        float *dst = full ? c : tmp;
                        int64_t ldd = full ? j->ldc : nr;
                        if (pl->bf)
                            pl->isa->bf16(kq, (const uint32_t *) abuf + (ir / mr) * kq * mr, (const uint32_t *) bbuf + (jr / nr) * kq * nr,
                                          dst, ldd, full && acc, scaled ? rs : NULL, cs);
                        else {
                            /* fp32 (scaled only on its 128-deep blocks, one sum block) */
                            tile_f32_block(pl, kc, (const float *) abuf + (ir / mr) * kc * mr, (const float *) bbuf + (jr / nr) * kc * nr, c, h, w,
                                           acc, scaled ? rs : NULL, cs);
                            continue;
                        }
                        if (!full)
                            for (int r = 0; r < h; r++)
                                for (int jj = 0; jj < w; jj++) c[r * j->ldc + jj] = acc ? c[r * j->ldc + jj] + tmp[r * nr + jj] : tmp[r * nr + jj];
                    }
                }
            }
        }
    }
}

/*
 * AMX (bf16 and fp8_gemm operands). Up to JIT_AMX rows the A block holds all rows, ~1 MiB of panels:
 * JIT_AMX x KC_AMX or, for fewer rows, a deeper K block (up to 4096), since c goes through L3 once per
 * K block and the tiles are fast enough that this shows (measured at K = 7168, one thread: M = 128
 * +7 % at 4096 over 2048, +11 % at 2048 over 1024; M = 512 best at 1024; 512 was 25-30 % slower).
 * More rows go in A blocks of MC_AMX x KC_AMX (measured at M = 1024: +3-13 % over 512 rows).
 */
#define KC_AMX 1024
#define KC_AMX_MAX 4096
#define JIT_AMX 512
#define MC_AMX 256
#define NC_AMX 2048

/* the K block for a rectangle of rows <= JIT_AMX rows */
static int64_t amx_kc(int64_t rows) {
    int64_t kc = (int64_t) JIT_AMX * KC_AMX / ((rows + GK_AMX_MR - 1) / GK_AMX_MR * GK_AMX_MR) / KC_AMX * KC_AMX;
    return kc < KC_AMX ? KC_AMX : kc > KC_AMX_MAX ? KC_AMX_MAX : kc;
}

/* the 32 x 32 tile of c at (row, col), h x w of it inside c; edge tiles run through tmp with c's running sum, in the same order */
static void amx_tile_at(const plan *pl, int64_t row, int64_t col, int h, int w, int64_t pc, int64_t kq, const uint32_t *ap, const uint32_t *bp,
                        const float *rs) {
    const sipu_gemm_job *j = pl->job;
    float tmp[GK_AMX_MR * GK_AMX_NR];
    float *c = j->c + row * j->ldc + col;
    const bool full = h == GK_AMX_MR && w == GK_AMX_NR;
    const int acc = pc > 0;
    float *dst = full ? c : tmp;
    const int64_t ldd = full ? j->ldc : GK_AMX_NR;
    if (!full && acc) {
        memset(tmp, 0, sizeof tmp);
        for (int r = 0; r < h; r++) memcpy(tmp + r * GK_AMX_NR, c + r * j->ldc, (size_t) w * sizeof(float));
    }
    if (rs) {
        float cs[GK_AMX_FP8_BLOCKS];
        const int64_t kb = pc / GK_SCALE_BLOCK, nsb = (kq + 63) / 64;
        for (int64_t sb = 0; sb < nsb; sb++) cs[sb] = j->bs[(col / GK_SCALE_BLOCK) * j->ldbs + kb + sb];
        sipu_gk_amx_tile_scaled(kq, ap, bp, dst, ldd, acc, rs, cs);
    } else {
        sipu_gk_amx_tile(kq, ap, bp, dst, ldd, acc);
    }
    if (!full)
        for (int r = 0; r < h; r++) memcpy(c + r * j->ldc, tmp + r * GK_AMX_NR, (size_t) w * sizeof(float));
}

/* fp8: the a scales of rows [ic, ic + mc) for the nsb blocks from kb on, as [panel][block][32] (zero beyond mc) */
static void amx_row_scales(const sipu_gemm_job *j, int64_t ic, int64_t mc, int64_t kb, int64_t nsb, float *rs) {
    for (int64_t ir = 0; ir < mc; ir += GK_AMX_MR)
        for (int64_t sb = 0; sb < nsb; sb++)
            for (int r = 0; r < GK_AMX_MR; r++)
                *rs++ = ir + r < mc ? j->as[(ic + ir + r) * j->ldas + kb + sb] : 0.0f;
}

/* the 32-column micro-panel of B at column col, w wide, K block [pc, pc + kc) */
static void pack_b_amx(const plan *pl, int64_t pc, int64_t kc, int64_t kq, int64_t col, int w, uint32_t *bp) {
    const sipu_gemm_job *j = pl->job;
    if (j->sb0 == 1 && j->sb1 != 1 && (j->tb == SIPU_BF16 || j->tb == SIPU_F8E4M3FN)) {
        sipu_gk_amx_pack_b(j->tb == SIPU_BF16 ? GK_PK_BF16 : GK_PK_E4M3, j->b + (col * j->sb1 + pc) * sipu_itemsize(j->tb), j->sb1, kc, w, bp, kq);
        return;
    }
    pack_b_bf16(j, pl->isa, pl->tables, GK_AMX_NR, pc, kc, kq, col, w, bp);
}

/* the tiles of one 32-column micro-panel bp of B at column col, w wide, down the packed rows [ic, ic + mc) */
static void amx_column(const plan *pl, int64_t ic, int64_t mc, int64_t col, int w, int64_t pc, int64_t kq, const uint32_t *abuf, const uint32_t *bp,
                       const float *rs) {
    const int mr = GK_AMX_MR;
    const int64_t nsb = (kq + 63) / 64;
    for (int64_t ir = 0; ir < mc; ir += mr)
        amx_tile_at(pl, ic + ir, col, (int) (mc - ir < mr ? mc - ir : mr), w, pc, kq, abuf + (ir / mr) * kq * mr, bp, rs ? rs + (ir / mr) * nsb * mr : NULL);
}

/*
 * Up to JIT_AMX rows (one A block), each B micro-panel is used right after it is packed, so it is
 * packed just in time into a buffer that stays in L2 (measured: M = 128 +40 %; a whole 4 MiB B panel
 * went to L3 and back, and its packing waited on those stores); otherwise the whole B panel is
 * packed once for all A blocks.
 */
static void run_rect_amx(const plan *pl, int64_t m0, int64_t m1, int64_t n0, int64_t n1, void *abuf, void *bbuf) {
    const sipu_gemm_job *j = pl->job;
    const int nr = GK_AMX_NR;
    const bool jit = m1 - m0 <= JIT_AMX;
    const int64_t kcmax = jit ? amx_kc(m1 - m0) : KC_AMX, mcmax = jit ? JIT_AMX : MC_AMX;
    float rs[JIT_AMX * KC_AMX / GK_SCALE_BLOCK]; /* the rows x blocks of one A block */
    for (int64_t jc = n0; jc < n1; jc += NC_AMX) {
        int64_t nc = n1 - jc < NC_AMX ? n1 - jc : NC_AMX;
        for (int64_t pc = 0; pc < j->k; pc += kcmax) {
            int64_t kc = j->k - pc < kcmax ? j->k - pc : kcmax;
            int64_t kq = ((kc + 1) / 2 + 15) / 16 * 16, nsb = (kq + 63) / 64; /* whole 16-pair steps of the tiles, zero-padded */
            for (int64_t jr = 0; !jit && jr < nc; jr += nr)
                pack_b_amx(pl, pc, kc, kq, jc + jr, (int) (nc - jr < nr ? nc - jr : nr), (uint32_t *) bbuf + (jr / nr) * kq * nr);
            for (int64_t ic = m0; ic < m1; ic += mcmax) {
                int64_t mc = m1 - ic < mcmax ? m1 - ic : mcmax;
                pack_a_amx(j, pl->tables, ic, mc, pc, kc, kq, abuf);
                if (j->as) amx_row_scales(j, ic, mc, pc / GK_SCALE_BLOCK, nsb, rs);
                for (int64_t jr = 0; jr < nc; jr += nr) {
                    int w = (int) (nc - jr < nr ? nc - jr : nr);
                    const uint32_t *bp = (const uint32_t *) bbuf + (jit ? 0 : (jr / nr) * kq * nr);
                    if (jit) pack_b_amx(pl, pc, kc, kq, jc + jr, w, bbuf);
                    amx_column(pl, ic, mc, jc + jr, w, pc, kq, abuf, bp, j->as ? rs : NULL);
                }
            }
        }
    }
}

/*
 * f32 linear layers (weights [N, K], K contiguous) as C^T = W a^T on the isa's f32_wt tile: per
 * K block, up to WT_MB rows of a are packed once as a^T panels (L2-resident), then the weights go
 * by mr rows, each row copied as it lies (a stream of kc floats) while the tiles of the rows before
 * prefetch it into L2; the copy stays in L1 for all panels of a. The weights are read once per
 * WT_MB rows and never transposed; the partial sums of C^T wait in ct until the last K block.
 */
#define WT_MB 512

/* rows n0..n0+h of the weights, K p0..p0+kc, into wp at the row stride GK_WT_LD */
static void copy_w_rows(const sipu_gemm_job *j, int64_t n0, int h, int64_t p0, int64_t kc, float *wp) {
    const int64_t isz = sipu_itemsize(j->tb);
    for (int r = 0; r < h; r++) {
        const char *src = j->b + ((n0 + r) * j->sb1 + p0) * isz;
        if (j->tb == SIPU_F32) memcpy(wp + r * GK_WT_LD, src, (size_t) kc * sizeof(float));
        else sipu_vt()->row_to_f32(j->tb, kc, src, wp + r * GK_WT_LD);
    }
}

/*
 * The prefetch stream of weight rows n..n+h-1, K p0..p0+kc, for tiles of `steps` K steps: the
 * sparsest power-of-two spacing (up to 1 line in 8 steps) that still covers its lines.
 */
static gk_pf weight_rows_pf(const sipu_gemm_job *j, int64_t n, int h, int64_t p0, int64_t kc, int64_t steps) {
    const int64_t isz = sipu_itemsize(j->tb), lines = h * ((kc * isz + 63) / 64);
    gk_pf pf = {j->b + (n * j->sb1 + p0) * isz, j->sb1 * isz, kc * isz, 0, h, 0};
    while (pf.every < 7 && steps / (pf.every * 2 + 2) >= lines) pf.every = pf.every * 2 + 1;
    return pf;
}

/* false: no memory for ct */
static bool run_rect_wt(const plan *pl, int64_t m0, int64_t m1, int64_t n0, int64_t n1, float *abuf, float *wp) {
    const sipu_gemm_job *j = pl->job;
    const int mr = pl->mr;
    const int64_t ldct = ((m1 - m0 < WT_MB ? m1 - m0 : WT_MB) + GK_WT_NR - 1) / GK_WT_NR * GK_WT_NR;
    float *ct = NULL;
    if (j->k > SUM_F32 && !(ct = aligned_alloc(64, (size_t) ((n1 - n0) * ldct) * sizeof(float)))) return false;
    for (int64_t mb = m0; mb < m1; mb += WT_MB) {
        const int64_t rows = m1 - mb < WT_MB ? m1 - mb : WT_MB, panels = (rows + GK_WT_NR - 1) / GK_WT_NR;
        for (int64_t pc = 0; pc < j->k; pc += pl->kc) {
            const int64_t kc = j->k - pc < pl->kc ? j->k - pc : pl->kc;
            const bool last = pc + kc >= j->k;
            pack_a_f32(j, pl->isa, GK_WT_NR, mb, rows, pc, kc, abuf);
            copy_w_rows(j, n0, (int) (n1 - n0 < mr ? n1 - n0 : mr), pc, kc, wp);
            for (int64_t jr = n0; jr < n1; jr += mr) {
                int h = (int) (n1 - jr < mr ? n1 - jr : mr);
                /* the next weight rows: the next mr of this K block, or the first of the next block */
                int64_t nj = jr + mr < n1 ? jr + mr : n0, np = jr + mr < n1 ? pc : pc + kc;
                int64_t nkc = j->k - np < pl->kc ? j->k - np : pl->kc;
                int nh = (int) (n1 - nj < mr ? n1 - nj : mr);
                gk_pf pf = np < j->k ? weight_rows_pf(j, nj, nh, np, nkc, panels * kc) : (gk_pf) {0};
                for (int64_t ip = 0; ip < rows; ip += GK_WT_NR)
                    for (int64_t q = 0; q < kc; q += SUM_F32) { /* by sum blocks, see SUM_F32 */
                        const int64_t kq = kc - q < SUM_F32 ? kc - q : SUM_F32;
                        pl->isa->f32_wt(h, kq, wp + q, abuf + (ip / GK_WT_NR) * kc * GK_WT_NR + q * GK_WT_NR,
                                        ct ? ct + (jr - n0) * ldct + ip : NULL, ldct, pc > 0 || q > 0,
                                        last && q + kq >= kc ? j->c + (mb + ip) * j->ldc + jr : NULL, j->ldc,
                                        (int) (rows - ip < GK_WT_NR ? rows - ip : GK_WT_NR), &pf);
                    }
                if (np < j->k) copy_w_rows(j, nj, nh, np, nkc, wp);
            }
        }
    }
    free(ct);
    return true;
}

/* ---- small M: stream K-contiguous weights once ---- */

#define GEMV_MAX_M 16
#define GEMV_COLS 64

static void plain_gemv(int mc, int64_t n, int64_t k, const float *a, int64_t lda, const char *b, int64_t ldb, int32_t tb, float *c, int64_t ldc) {
    for (int64_t jj = 0; jj < n; jj++)
        for (int m = 0; m < mc; m++) {
            float s[8] = {0};
            int64_t p = 0;
            for (; p + 8 <= k; p += 8)
                for (int l = 0; l < 8; l++) s[l] += a[m * lda + p + l] * get_f32(b, jj * ldb + p + l, tb);
            for (; p < k; p++) s[0] += a[m * lda + p] * get_f32(b, jj * ldb + p, tb);
            c[m * ldc + jj] = ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7]));
        }
}

static sipu_status run_gemv(const sipu_gemm_job *j, const gk_isa *isa, const gk_tables *tables, bool bf, int threads, const char *fn) {
    const int64_t M = j->m, N = j->n, K = j->k, kpad = (K + 31) / 32 * 32;
    const int item = bf ? 2 : 4;
    void *abuf = calloc((size_t) (M * kpad), (size_t) item);
    if (!abuf) return sipu_fail(SIPU_ERR_OUT_OF_MEMORY, "%s: no memory for a [%lld, %lld]", fn, (long long) M, (long long) K);
    for (int64_t m = 0; m < M; m++)
        for (int64_t p = 0; p < K; p++) {
            int64_t off = m * j->sa0 + p * j->sa1;
            if (bf) ((uint16_t *) abuf)[m * kpad + p] = (uint16_t) get_bf16(tables, j->a, off, j->ta);
            else ((float *) abuf)[m * kpad + p] = get_f32(j->a, off, j->ta);
        }
    const int ib = sipu_itemsize(j->tb);
    const int64_t chunks = (N + GEMV_COLS - 1) / GEMV_COLS;
    #pragma omp parallel for num_threads(threads) schedule(static)
    for (int64_t ch = 0; ch < chunks; ch++) {
        int64_t n0 = ch * GEMV_COLS, n = N - n0 < GEMV_COLS ? N - n0 : GEMV_COLS;
        /*
         * Over 4 rows, K goes in L1-sized slices (the slice of a stays in L1 while the columns pass);
         * each slice's sums are added into c. Slices are whole 128-blocks so fp8 scales line up.
         */
        const int64_t kslice = M > 4 ? (bf ? 1024 : 512) : K;
        float part[8 * GEMV_COLS];
        /* K slices outside the 8-row groups: a group re-reads the slice of weights from L2, not memory */
        for (int64_t k0 = 0; k0 < K; k0 += kslice) {
            int64_t kl = K - k0 < kslice ? K - k0 : kslice;
            for (int64_t m0 = 0; m0 < M; m0 += 8) {
                int mc = (int) (M - m0 < 8 ? M - m0 : 8);
                float *c = j->c + m0 * j->ldc + n0;
                const char *b = j->b + (n0 * j->sb1 + k0) * ib;
                float *dst = k0 == 0 ? c : part;
                int64_t ldd = k0 == 0 ? j->ldc : GEMV_COLS;
                if (bf) {
                    /* a 64-column chunk lies in one 128-column scale block */
                    int64_t kb0 = k0 / GK_SCALE_BLOCK;
                    isa->gemv_bf16(mc, n, kl, (const uint16_t *) abuf + m0 * kpad + k0, kpad, (const uint8_t *) b, j->sb1, j->tb, dst, ldd,
                                   j->as ? j->as + m0 * j->ldas + kb0 : NULL, j->ldas,
                                   j->bs ? j->bs + (n0 / GK_SCALE_BLOCK) * j->ldbs + kb0 : NULL, j->ldbs);
                } else {
                    gk_gemv_f32 g = isa->gemv_f32 ? isa->gemv_f32 : plain_gemv;
                    g(mc, n, kl, (const float *) abuf + m0 * kpad + k0, kpad, b, j->sb1, j->tb, dst, ldd);
                }
                if (k0 > 0)
                    for (int r = 0; r < mc; r++)
                        for (int64_t jj = 0; jj < n; jj++) c[r * j->ldc + jj] += part[r * GEMV_COLS + jj];
            }
        }
    }
    free(abuf);
    return SIPU_OK;
}

/* AMX decode: the weights feed the tiles directly (gemm_amx.c); a^T and its scales packed once, rows of w split over threads */
static sipu_status run_amx_decode(const sipu_gemm_job *j, const gk_isa *isa, const gk_tables *tables, int threads, const char *fn) {
    const int64_t M = j->m, N = j->n, K = j->k, kpad = (K + 127) / 128 * 128, kq = kpad / 2, KB = kpad / 128;
    const bool fp8 = j->tb == SIPU_F8E4M3FN;
    uint32_t *at = aligned_alloc(64, (size_t) (kq * 16) * 4);
    float *ast = fp8 ? aligned_alloc(64, (size_t) (KB * 16) * 4) : NULL;
    if (!at || (fp8 && !ast)) {
        free(at);
        free(ast);
        return sipu_fail(SIPU_ERR_OUT_OF_MEMORY, "%s: no memory for a [%lld, %lld]", fn, (long long) M, (long long) K);
    }
    if (j->sa1 == 1 && isa->pack_kt)
        isa->pack_kt(j->ta == SIPU_BF16 ? GK_PK_BF16 : GK_PK_E4M3, j->a, j->sa0, K, (int) M, at, 16, kq);
    else {
        memset(at, 0, (size_t) (kq * 16) * 4);
        for (int64_t m = 0; m < M; m++)
            for (int64_t p = 0; p < K; p++) ((uint16_t *) (at + (p / 2) * 16 + m))[p & 1] = (uint16_t) get_bf16(tables, j->a, m * j->sa0 + p * j->sa1, j->ta);
    }
    if (fp8)
        for (int64_t kb = 0; kb < KB; kb++)
            for (int m = 0; m < 16; m++) ast[kb * 16 + m] = m < M ? j->as[m * j->ldas + kb] : 0.0f;
    const int ib = sipu_itemsize(j->tb);
    const int64_t groups = (N + GK_AMX_DEC_N - 1) / GK_AMX_DEC_N;
    if (threads > groups) threads = (int) groups;
    #pragma omp parallel num_threads(threads)
    {
        sipu_gk_amx_begin();
        #pragma omp for schedule(static)
        for (int64_t g = 0; g < groups; g++) {
            int64_t n0 = g * GK_AMX_DEC_N, nn = N - n0 < GK_AMX_DEC_N ? N - n0 : GK_AMX_DEC_N;
            sipu_gk_amx_decode(fp8, nn, K, at, (const uint8_t *) j->b + n0 * j->sb1 * ib, j->sb1, (int) M, j->c + n0, j->ldc, ast,
                               fp8 ? j->bs + (n0 / GK_SCALE_BLOCK) * j->ldbs : NULL);
        }
        sipu_gk_amx_end();
    }
    free(at);
    free(ast);
    return SIPU_OK;
}

/* ---- entry ---- */

sipu_status sipu_gemm_run(const sipu_gemm_job *j, const char *fn) {
    if (j->m == 0 || j->n == 0) return SIPU_OK;
    const gk_isa *isa = pick_isa();
    const bool exact16 = (j->ta == SIPU_BF16 || j->ta == SIPU_F8E4M3FN) && (j->tb == SIPU_BF16 || j->tb == SIPU_F8E4M3FN);
    const bool bf = isa->bf16 && exact16;
    const bool scaled = j->as != NULL;
    gk_tables tables;
    /* read only for e4m3 operands: other GEMMs (every decode step's) skip the 256 conversions */
    if (j->ta == SIPU_F8E4M3FN || j->tb == SIPU_F8E4M3FN)
        for (int v = 0; v < 256; v++) tables.e4m3_bf16[v] = f32_to_bf16(e4m3_to_f32((uint8_t) v));
    double flops = (double) j->m * (double) j->n * (double) j->k;
    int threads = sipu_threads_for(2 * flops);

    if (j->k == 0) {
        for (int64_t m = 0; m < j->m; m++) memset(j->c + m * j->ldc, 0, (size_t) j->n * sizeof(float));
        return SIPU_OK;
    }
    /* decode: weights K-contiguous, few rows of a */
    if (j->m <= GEMV_MAX_M && j->sb0 == 1 && j->n > 1) {
        /* measured: a single row streams as fast or faster through the register loops below */
        if (bf && sipu_amx() && j->m <= GK_AMX_DEC_M && j->m > 1 && j->sb1 != 1 && (j->tb == SIPU_F8E4M3FN) == scaled)
            return run_amx_decode(j, isa, &tables, threads, fn);
        if (bf && isa->gemv_bf16) return run_gemv(j, isa, &tables, true, threads, fn);
        if (!scaled && (j->tb == SIPU_F32 || j->tb == SIPU_BF16)) return run_gemv(j, isa, &tables, false, threads, fn);
    }

    const bool amx = bf && sipu_amx(), f32 = !bf && !scaled;
    plan pl = {j, isa, &tables, bf, amx, amx ? GK_AMX_MR : bf ? 14 : isa->mr, amx ? GK_AMX_NR : bf ? 32 : isa->nr,
               amx ? KC_AMX : scaled ? GK_SCALE_BLOCK : bf ? KC_BF16 : KC_F32, 0};
    /* AMX: the A buffer holds JIT_AMX x KC_AMX, or fewer rows deeper */
    pl.mc = amx ? JIT_AMX : ((f32 ? MC_F32 : MC_TARGET) + pl.mr - 1) / pl.mr * pl.mr;
    /* fp32: K blocks of equal depth in whole sum blocks (1024 = 576 + 448 rather than 576 + 576) */
    if (f32) {
        const int64_t sums = (j->k + SUM_F32 - 1) / SUM_F32, blocks = (j->k + KC_F32 - 1) / KC_F32;
        pl.kc = (sums + blocks - 1) / blocks * SUM_F32;
    }
    /* f32 linear layout: C^T = W a^T, a's rows packed in WT_MB blocks, the weights by mr rows */
    const bool wt = f32 && pl.isa->f32_wt && j->sb0 == 1 && j->sb1 != 1;
    /* split the longer side in units of tiles (N in 128s when scaled, so a tile never straddles a scale block) */
    int64_t nunit = scaled ? GK_SCALE_BLOCK : wt ? pl.mr : pl.nr, munit = wt ? GK_WT_NR : pl.mr;
    int64_t ntiles = (j->n + nunit - 1) / nunit, mtiles = (j->m + munit - 1) / munit;
    bool split_n = ntiles >= threads * 2 || ntiles >= mtiles;
    int64_t tiles = split_n ? ntiles : mtiles;
    if (threads > tiles) threads = (int) tiles;
    /* words per panel row: kc (f32), or pairs of K, padded to 16 pairs for AMX; one word more than needed either way */
    int64_t kw = pl.amx ? (pl.kc / 2 + 15) / 16 * 16 : pl.kc;
    int64_t arows = wt ? ((j->m < WT_MB ? j->m : WT_MB) + GK_WT_NR - 1) / GK_WT_NR * GK_WT_NR : pl.mc;
    size_t abytes = (size_t) (arows * kw) * sizeof(float) + 64, bbytes = (size_t) (wt ? pl.mr * GK_WT_LD : NC * kw) * sizeof(float) + 64;
    abytes = (abytes + 63) / 64 * 64;
    bbytes = (bbytes + 63) / 64 * 64;
    bool oom = false;
    #pragma omp parallel num_threads(threads) reduction(||:oom)
    {
        int t = 0, nt = 1;
#ifdef _OPENMP
        t = omp_get_thread_num();
        nt = omp_get_num_threads();
#endif
        int64_t t0 = tiles * t / nt, t1 = tiles * (t + 1) / nt;
        void *abuf = aligned_alloc(64, abytes), *bbuf = aligned_alloc(64, bbytes);
        if (!abuf || !bbuf) {
            oom = true;
        } else if (t0 < t1) {
            if (pl.amx) sipu_gk_amx_begin();
            int64_t m0 = split_n ? 0 : t0 * munit, m1 = split_n || t1 * munit > j->m ? j->m : t1 * munit;
            int64_t n0 = split_n ? t0 * nunit : 0, n1 = !split_n || t1 * nunit > j->n ? j->n : t1 * nunit;
            if (wt) oom = !run_rect_wt(&pl, m0, m1, n0, n1, abuf, bbuf);
            else if (pl.amx) run_rect_amx(&pl, m0, m1, n0, n1, abuf, bbuf);
            else run_rect(&pl, m0, m1, n0, n1, abuf, bbuf);
            if (pl.amx) sipu_gk_amx_end();
        }
        free(abuf);
        free(bbuf);
    }
    if (oom) return sipu_fail(SIPU_ERR_OUT_OF_MEMORY, "%s: no memory for packing buffers", fn);
    return SIPU_OK;
}
