/*
 * Varlen and paged attention (flash-attention's varlen_fwd, vLLM's unified attention, and the
 * batched _flash_attn_forward mapped onto the same packed form) with an online softmax over key
 * tiles (running max, running sum, fp32 accumulator), so the memory per work item is a few tiles,
 * never an Lq x Lk matrix.
 *
 * Prefill-like items (a block of query rows of one kv head: positions x heads of its GQA group) run
 * on GEMM tiles of gemm_kernels.h: Q packed once, each 64-key tile as K^T and V panels (packed once
 * per sequence up front when it has several query blocks), S = Q K^T, the softmax step per row with
 * the vectorized exp, O += P V. bf16 on AMX: Q, K and V stay bf16 (exact products, fp32 sums) and P
 * is rounded to bf16 before P V, as PyTorch's CPU flash attention does for reduced types
 * (aten/src/ATen/native/cpu/FlashAttentionKernel.cpp: _exp_reduce_sum_fusion_kernel writes
 * exp(qk - max) to qk_reduced_data in scalar_t while the row sum accumulates the fp32 values, and
 * the P V gemm reads qk_reduced_data) and flash-attention's GPU kernels do (P converted to the input
 * type before the second gemm). Elsewhere (f32, f16, no AMX) inputs are widened exactly to fp32 and
 * run on the fp32 microkernels, P kept in fp32.
 * Decode-like items (a handful of rows per kv head) take several kv heads at once, so the cache is
 * read key row by key row (bf16 rows in place with AVX-512: attention_avx512.c), and split their
 * keys over the threads when there are too few items, merging the splits' (max, sum, accumulator)
 * at the end.
 *
 * Masks (SEMANTICS.md §11): query i of a sequence sits at position i + Lk - Lq; key j is visible
 * iff j <= pos + wr (wr >= 0) and j >= pos - wl (wl >= 0). Scores are scale * q.k, soft-capped as
 * softcap * tanh(s / softcap) when softcap > 0. A row without a visible key gives 0 and lse +inf.
 */
#include "attention_avx512.h"
#include "convert.h"
#include "gemm_kernels.h"
#include "internal.h"

#include <math.h>
#include <stdlib.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#define TILE 64
/* query rows (positions x heads of a GQA group) per work item: enough to amortize packing a key tile */
#define ROWS_TARGET 56

typedef struct {
    const sipu_tensor *out, *lse, *q, *k, *v;
    const int32_t *cu_q, *cu_k, *used, *table;
    int64_t B, Hq, Hk, D, Dv, page, max_blocks, table_stride;
    float scale, softcap;
    int64_t wl, wr;
    /* execution */
    const gk_isa *isa;
    const sipu_vtable *vt;
    bool amx;  /* bf16 on the AMX tiles (mr = nr = 32) */
    bool kv_bf16; /* the decode rows read bf16 K and V in place (attention_avx512.c) */
    int mr, nr;
    int64_t G, qpos, rmax, rpad, dvp; /* heads per group, positions per item, rows, padded rows, padded Dv */
    int64_t dq;                 /* AMX: D rounded up to whole 32-element steps of the tiles */
    int64_t kwords, tile_words; /* 32-bit words of one packed key tile's K^T panels, and with its V panels */
} plan;

static inline const char *kv_row(const plan *p, const sipu_tensor *t, int64_t b, int64_t j, int64_t hk) {
    const int item = sipu_itemsize(t->dtype);
    if (p->table) {
        int64_t block = p->table[b * p->table_stride + j / p->page];
        return (const char *) t->data + (block * t->strides[0] + (j % p->page) * t->strides[1] + hk * t->strides[2]) * item;
    }
    return (const char *) t->data + ((p->cu_k[b] + j) * t->strides[0] + hk * t->strides[1]) * item;
}

static void store_row(char *dst, int32_t dtype, int64_t stride, int64_t n, const float *restrict src, float mul) {
    if (stride == 1 && dtype == SIPU_F32) {
        float *o = (float *) dst;
        for (int64_t d = 0; d < n; d++) o[d] = src[d] * mul;
    } else if (stride == 1 && dtype == SIPU_BF16) {
        uint16_t *o = (uint16_t *) dst;
        for (int64_t d = 0; d < n; d++) o[d] = f32_to_bf16(src[d] * mul);
    } else {
        const int item = sipu_itemsize(dtype);
        for (int64_t d = 0; d < n; d++) store_f32(dst + d * stride * item, dtype, src[d] * mul);
    }
}

/*
 * The online-softmax step of one row over one key tile: s[0..n) holds q.k; keys outside [a, e) are
 * masked. Leaves the weights exp(score - m) in s (0 where masked), updates m and l and rescales the
 * row's accumulator o (dv values) to the new maximum.
 */
static inline void softmax_step(const plan *p, float *restrict s, int64_t n, int64_t a, int64_t e, float *m, float *l, float *o, int64_t dv) {
    float scale = p->scale;
    const float cap = p->softcap;
    if (cap > 0) {
        for (int64_t j = a; j < e; j++) s[j] = cap * tanhf(s[j] * scale / cap);
        scale = 1.0f;
    }
    p->vt->softmax_step_f32(n, s, a, e, scale, m, l, o, dv);
}

typedef struct {
    int64_t b, hk, i0, i1, Lq, Lk;
    int64_t nh;     /* kv heads hk .. hk + nh (the few-row path takes several) */
    int64_t k0, k1; /* keys of this item (a split of a long decode row), within the visible ones */
    float *part;    /* the split's unnormalized o, m, l go here instead of out */
    const float *kpre; /* this (sequence, kv head)'s key and value tiles packed once for all its query blocks, or NULL */
} item;

/* visible keys [lo, hi) of query i of the item's sequence (hi <= lo: none) */
static inline void visible(const plan *p, const item *it, int64_t i, int64_t *lo, int64_t *hi) {
    const int64_t pos = i + it->Lk - it->Lq;
    *lo = 0, *hi = it->Lk;
    if (p->wl >= 0 && pos - p->wl > *lo) *lo = pos - p->wl;
    if (p->wr >= 0 && pos + p->wr + 1 < *hi) *hi = pos + p->wr + 1;
}

typedef struct {
    float *qp, *kp, *s, *pp, *vp, *o, *m, *l, *tmp;
} buffers;

/* row r of an item: kv head hk + r / R1, query i0 + (r % R1) / G, head of the group (r % R1) % G */
static inline const char *q_row(const plan *p, const item *it, int64_t r, int64_t *t, int64_t *h) {
    const int64_t R1 = (it->i1 - it->i0) * p->G, hl = r / R1, rr = r % R1;
    *t = p->cu_q[it->b] + it->i0 + rr / p->G;
    *h = (it->hk + hl) * p->G + rr % p->G;
    const sipu_tensor *q = p->q;
    return (const char *) q->data + (*t * q->strides[0] + *h * q->strides[1]) * sipu_itemsize(q->dtype);
}

static void finish(const plan *p, const item *it, int64_t R, const float *o, int64_t ldo, const float *m, const float *l) {
    const sipu_tensor *out = p->out;
    const int oi = sipu_itemsize(out->dtype);
    for (int64_t r = 0; r < R; r++) {
        int64_t t, h;
        q_row(p, it, r, &t, &h);
        char *dst = (char *) out->data + (t * out->strides[0] + h * out->strides[1]) * oi;
        store_row(dst, out->dtype, out->strides[2], p->Dv, o + r * ldo, l[r] > 0 ? 1.0f / l[r] : 0.0f);
        if (p->lse) ((float *) p->lse->data)[h * p->lse->strides[0] + t * p->lse->strides[1]] = l[r] > 0 ? m[r] + logf(l[r]) : INFINITY;
    }
}

/*
 * The packers below take keys j0 .. j0 + n of kv heads hk0 .. hk0 + nh, head h's tile at kp and vp
 * + h * hstride words: key by key, all heads of a key together, so the reads run along memory rather
 * than one head's rows a key stride apart (4 KiB for 16 heads of 128; measured: those reads were
 * ~12 % of the prefill).
 *
 * fp32 B panels of the tiles: K^T in nr-wide panels [D][nr], zero past n in the last one; V in
 * panels [TILE][nr] (columns past Dv must already be zero in vp).
 */
static void pack_tile(const plan *p, int64_t b, int64_t hk0, int64_t nh, int64_t j0, int64_t n, float *kp, float *vp, int64_t hstride,
                      float *tmp) {
    const sipu_tensor *k = p->k, *v = p->v;
    const int nr = p->nr, kstride = p->table ? 3 : 2;
    const int64_t D = p->D, Dv = p->Dv, kpanels = (n + nr - 1) / nr;
    if (n % nr)
        for (int64_t h = 0; h < nh; h++) memset(kp + h * hstride + (kpanels - 1) * D * nr, 0, (size_t) (D * nr) * 4);
    for (int64_t j = 0; j < n; j++)
        for (int64_t h = 0; h < nh; h++) {
            float *panel = kp + h * hstride + (j / nr) * D * nr + j % nr;
            sipu_row_to_f32_strided(kv_row(p, k, b, j0 + j, hk0 + h), k->dtype, k->strides[kstride], D, tmp);
            for (int64_t d = 0; d < D; d++) panel[d * nr] = tmp[d];
        }
    for (int64_t j = 0; j < n; j++)
        for (int64_t h = 0; h < nh; h++) {
            sipu_row_to_f32_strided(kv_row(p, v, b, j0 + j, hk0 + h), v->dtype, v->strides[kstride], Dv, tmp);
            for (int64_t c0 = 0; c0 < Dv; c0 += nr)
                memcpy(vp + h * hstride + (c0 / nr) * TILE * nr + j * nr, tmp + c0, (size_t) (Dv - c0 < nr ? Dv - c0 : nr) * 4);
        }
}

/* n bf16 elements of a row (element stride `stride`), zero from n up to pad */
static void row_bf16(const char *src, int64_t stride, int64_t n, int64_t pad, uint16_t *restrict dst) {
    const uint16_t *h = (const uint16_t *) src;
    if (stride == 1) {
        memcpy(dst, h, (size_t) n * 2);
    } else {
        for (int64_t d = 0; d < n; d++) dst[d] = h[d * stride];
    }
    for (int64_t d = n; d < pad; d++) dst[d] = 0;
}

/*
 * AMX b panels (pairs of bf16 along the tiles' K, low = even): K^T in 32-key panels [dq / 2][32]
 * (word q of key j = its elements 2q, 2q + 1), V in 32-column panels [TILE / 2][32] (word q of
 * column c = keys 2q, 2q + 1 of the tile); zero past n, D and Dv.
 */
static void pack_tile_amx(const plan *p, int64_t b, int64_t hk0, int64_t nh, int64_t j0, int64_t n, uint32_t *kp, uint32_t *vp,
                          int64_t hstride, uint16_t *tmp) {
    const sipu_tensor *k = p->k, *v = p->v;
    const int kstride = p->table ? 3 : 2;
    const int64_t kq = p->dq / 2, Dv = p->Dv;
    for (int64_t h = 0; h < nh; h++) {
        memset(kp + h * hstride, 0, (size_t) (TILE * kq) * 4);
        memset(vp + h * hstride, 0, (size_t) (TILE / 2 * p->dvp) * 4);
    }
    for (int64_t j = 0; j < n; j++)
        for (int64_t h = 0; h < nh; h++) {
            row_bf16(kv_row(p, k, b, j0 + j, hk0 + h), k->strides[kstride], p->D, p->dq, tmp);
            uint32_t *panel = kp + h * hstride + (j / 32) * kq * 32 + j % 32;
            for (int64_t q = 0; q < kq; q++) panel[q * 32] = (uint32_t) tmp[2 * q] | (uint32_t) tmp[2 * q + 1] << 16;
        }
    uint16_t *r0 = tmp, *r1 = tmp + Dv;
    for (int64_t j = 0; j < n; j += 2)
        for (int64_t h = 0; h < nh; h++) {
            row_bf16(kv_row(p, v, b, j0 + j, hk0 + h), v->strides[kstride], Dv, Dv, r0);
            if (j + 1 < n) row_bf16(kv_row(p, v, b, j0 + j + 1, hk0 + h), v->strides[kstride], Dv, Dv, r1);
            else memset(r1, 0, (size_t) Dv * 2);
            for (int64_t c0 = 0; c0 < Dv; c0 += 32)
                p->isa->interleave_bf16(r0 + c0, r1 + c0, (int) (Dv - c0 < 32 ? Dv - c0 : 32), vp + h * hstride + c0 * (TILE / 2) + (j / 2) * 32, 32);
        }
}

/* one key tile of the prefill path for each of nh kv heads, in the layout of the plan's tiles */
static void pack_keys(const plan *p, int64_t b, int64_t hk0, int64_t nh, int64_t j0, int64_t n, float *kp, float *vp, int64_t hstride,
                      float *tmp) {
    if (p->amx) pack_tile_amx(p, b, hk0, nh, j0, n, (uint32_t *) kp, (uint32_t *) vp, hstride, (uint16_t *) tmp);
    else pack_tile(p, b, hk0, nh, j0, n, kp, vp, hstride, tmp);
}

/*
 * The item's R query rows as the A operand of S = Q K^T (fp32 panels [D][mr], or bf16 rows of dq
 * elements for AMX; zero up to rpad rows), and each row's running max and sum reset.
 */
static void pack_q(const plan *p, const item *it, const buffers *bu, int64_t R, int64_t rpad) {
    const int mr = p->mr;
    if (p->amx) memset(bu->qp + R * p->dq / 2, 0, (size_t) ((rpad - R) * p->dq) * 2);
    else memset(bu->qp, 0, (size_t) (rpad * p->D) * 4);
    for (int64_t r = 0; r < R; r++) {
        int64_t t, h;
        const char *src = q_row(p, it, r, &t, &h);
        if (p->amx) {
            row_bf16(src, p->q->strides[2], p->D, p->dq, (uint16_t *) bu->qp + r * p->dq);
        } else {
            sipu_row_to_f32_strided(src, p->q->dtype, p->q->strides[2], p->D, bu->tmp);
            float *dst = bu->qp + (r / mr) * p->D * mr + r % mr;
            for (int64_t d = 0; d < p->D; d++) dst[d * mr] = bu->tmp[d];
        }
        bu->m[r] = -INFINITY;
        bu->l[r] = 0;
    }
}

/* rows of panel rb of S (row stride TILE) = their q . k for the tile's n keys */
static void tile_scores(const plan *p, const buffers *bu, int64_t rb, const float *kp, int64_t n) {
    float *s = bu->s + rb * p->mr * TILE;
    if (p->amx) {
        const int64_t kq = p->dq / 2;
        for (int64_t kb = 0; kb * 32 < n; kb++)
            sipu_gk_amx_tile_rows(kq, (const uint32_t *) bu->qp + rb * 32 * kq, (const uint32_t *) kp + kb * kq * 32, s + kb * 32, TILE, 0);
        return;
    }
    for (int64_t kb = 0; kb * p->nr < n; kb++)
        p->isa->f32(p->D, bu->qp + rb * p->D * p->mr, kp + kb * p->D * p->nr, s + kb * p->nr, TILE, 0, NULL, 1.0f);
}

/*
 * Row r's n softmax weights (w NULL: none visible, all 0) as the A operand of O += P V: fp32 panels
 * [TILE][mr], or for AMX a bf16 row of TILE (c10's round to nearest even, zero past n).
 */
static void keep_weights(const plan *p, const buffers *bu, int64_t r, const float *w, int64_t n) {
    if (p->amx) {
        uint16_t *dst = (uint16_t *) bu->pp + r * TILE;
        int64_t kept = w ? n : 0;
        if (kept) p->vt->cast_float(kept, SIPU_F32, w, SIPU_BF16, dst);
        memset(dst + kept, 0, (size_t) (TILE - kept) * 2);
        return;
    }
    float *dst = bu->pp + (r / p->mr) * TILE * p->mr + r % p->mr;
    for (int64_t j = 0; j < n; j++) dst[j * p->mr] = w ? w[j] : 0;
}

/* rows of panel rb of O += their P times the tile's V (n keys) */
static void tile_pv(const plan *p, const buffers *bu, int64_t rb, const float *vp, int64_t n) {
    float *o = bu->o + rb * p->mr * p->dvp;
    if (p->amx) {
        for (int64_t c0 = 0; c0 < p->dvp; c0 += 32)
            sipu_gk_amx_tile_rows(TILE / 2, (const uint32_t *) bu->pp + rb * 32 * (TILE / 2), (const uint32_t *) vp + c0 * (TILE / 2), o + c0,
                                  p->dvp, 1);
        return;
    }
    for (int64_t c0 = 0; c0 < p->Dv; c0 += p->nr)
        p->isa->f32(n, bu->pp + rb * TILE * p->mr, vp + c0 * TILE, o + c0, p->dvp, 1, NULL, 1.0f);
}

/*
 * Many rows: Q packed once as the A operand of the tiles, each key tile packed as B panels (K^T),
 * S = Q K^T by the tiles, the softmax step per row into packed P, O += P V by the tiles again.
 * Row panels without a visible key in the tile are skipped.
 */
static void attend_tiles(const plan *p, const item *it, const buffers *bu) {
    const int mr = p->mr;
    const int64_t Dv = p->Dv, dvp = p->dvp, R = (it->i1 - it->i0) * p->G, rpad = (R + mr - 1) / mr * mr;
    pack_q(p, it, bu, R, rpad);
    memset(bu->pp, 0, (size_t) (rpad * (p->amx ? TILE / 2 : TILE)) * 4);
    if (!it->kpre && !p->amx) memset(bu->vp, 0, (size_t) (dvp * TILE) * 4);
    memset(bu->o, 0, (size_t) (rpad * dvp) * 4);
    int64_t blo, bhi, tmp;
    visible(p, it, it->i0, &blo, &tmp);
    visible(p, it, it->i1 - 1, &tmp, &bhi);
    /* tiles start at multiples of TILE (the packed tiles of kpre); keys before blo are masked */
    for (int64_t j0 = blo > 0 ? blo / TILE * TILE : 0; j0 < bhi; j0 += TILE) {
        const int64_t n = bhi - j0 < TILE ? bhi - j0 : TILE;
        const float *kp = bu->kp, *vp = bu->vp;
        if (it->kpre) {
            kp = it->kpre + (j0 / TILE) * p->tile_words;
            vp = kp + p->kwords;
        } else {
            pack_keys(p, it->b, it->hk, 1, j0, n, bu->kp, bu->vp, 0, bu->tmp);
        }
        for (int64_t rb = 0; rb * mr < R; rb++) {
            /* the panel's rows see keys [lo of its first row, hi of its last) */
            int64_t r0 = rb * mr, r1 = r0 + mr < R ? r0 + mr : R, plo, phi;
            visible(p, it, it->i0 + r0 / p->G, &plo, &tmp);
            visible(p, it, it->i0 + (r1 - 1) / p->G, &tmp, &phi);
            if (plo >= j0 + n || phi <= j0 || phi <= plo) continue; /* no visible key of this tile in the panel */
            tile_scores(p, bu, rb, kp, n);
            for (int64_t r = r0; r < r1; r++) {
                int64_t lo, hi;
                visible(p, it, it->i0 + r / p->G, &lo, &hi);
                int64_t a = lo > j0 ? lo - j0 : 0, e = hi < j0 + n ? hi - j0 : n;
                float *srow = bu->s + r * TILE;
                if (a >= e) {
                    keep_weights(p, bu, r, NULL, n);
                    continue;
                }
                softmax_step(p, srow, n, a, e, &bu->m[r], &bu->l[r], bu->o + r * dvp, Dv);
                keep_weights(p, bu, r, srow, n);
            }
            tile_pv(p, bu, rb, vp, n);
        }
    }
    finish(p, it, R, bu->o, dvp, bu->m, bu->l);
}

#define TILE_ROWS 16 /* keys per step of the few-row path (one page of the usual caches) */

/* elements from one kv head's row of t to the next head's */
/* The sequence b that work unit x belongs to, first[b] <= x < first[b + 1], where first[0..B] are
 * nondecreasing prefix counts with first[0] = 0 <= x < first[B]: the largest such b, so sequences
 * without units (equal neighbours) are skipped. */
static int64_t sequence_of(const int64_t *first, int64_t B, int64_t x) {
    int64_t lo = 0, hi = B;
    while (hi - lo > 1) {
        int64_t mid = (lo + hi) / 2;
        if (first[mid] <= x) lo = mid;
        else hi = mid;
    }
    return lo;
}

static inline int64_t head_step(const plan *p, const sipu_tensor *t) { return t->strides[p->table ? 2 : 1]; }

/* bf16 rows of keys j0 .. j0 + n of kv head hk of t; head hk + h's rows are h head strides further */
static void bf16_rows(const plan *p, const sipu_tensor *t, int64_t b, int64_t j0, int64_t n, int64_t hk, const uint16_t **rows) {
    for (int64_t j = 0; j < n; j++) rows[j] = (const uint16_t *) kv_row(p, t, b, j0 + j, hk);
}

/*
 * S = Q K^T of keys j0 .. j0 + n for the item's R1 rows of each of its nh kv heads, into s (rows of
 * TILE_ROWS). Without in-place bf16 the K (and V) rows are widened into kp and vp first.
 */
static void rows_scores(const plan *p, const item *it, int64_t j0, int64_t n, const float *q, const buffers *bu, const uint16_t **krow,
                        const uint16_t **vrow) {
    const sipu_tensor *k = p->k, *v = p->v;
    const int kstride = p->table ? 3 : 2;
    const int64_t D = p->D, Dv = p->Dv, R1 = (it->i1 - it->i0) * p->G, nh = it->nh;
    if (p->kv_bf16) {
        bf16_rows(p, k, it->b, j0, n, it->hk, krow);
        bf16_rows(p, v, it->b, j0, n, it->hk, vrow);
        const int64_t hstep = head_step(p, k);
        for (int64_t r = 0; r < nh * R1; r++)
            sipu_attn_dot_bf16(D, q + r * D, krow, (r / R1) * hstep, (int) n, bu->s + r * TILE_ROWS);
        return;
    }
    for (int64_t j = 0; j < n; j++)
        for (int64_t hl = 0; hl < nh; hl++) {
            sipu_row_to_f32_strided(kv_row(p, k, it->b, j0 + j, it->hk + hl), k->dtype, k->strides[kstride], D, bu->kp + (hl * TILE_ROWS + j) * D);
            sipu_row_to_f32_strided(kv_row(p, v, it->b, j0 + j, it->hk + hl), v->dtype, v->strides[kstride], Dv, bu->vp + (hl * TILE_ROWS + j) * Dv);
        }
    for (int64_t hl = 0; hl < nh; hl++)
        p->vt->dot_rows_f32((int) R1, (int) n, D, q + hl * R1 * D, D, bu->kp + hl * TILE_ROWS * D, D, bu->s + hl * R1 * TILE_ROWS, TILE_ROWS);
}

/* O += P V for the keys of rows_scores (the weights in s, the value rows as it left them) */
static void rows_pv(const plan *p, const item *it, int64_t n, const buffers *bu, const uint16_t *const *vrow) {
    const int64_t Dv = p->Dv, R1 = (it->i1 - it->i0) * p->G, nh = it->nh;
    if (p->kv_bf16) {
        const int64_t hstep = head_step(p, p->v);
        for (int64_t r = 0; r < nh * R1; r++) sipu_attn_axpy_bf16(Dv, bu->s + r * TILE_ROWS, vrow, (r / R1) * hstep, (int) n, bu->o + r * Dv);
        return;
    }
    for (int64_t hl = 0; hl < nh; hl++)
        p->vt->axpy_rows_f32((int) R1, (int) n, Dv, bu->s + hl * R1 * TILE_ROWS, TILE_ROWS, bu->vp + hl * TILE_ROWS * Dv, Dv,
                             bu->o + hl * R1 * Dv, Dv);
}

/*
 * Few rows (decode): Q.K as row dot products and O += P V as row updates, for several kv heads at
 * once so the cache is read key row by key row (all heads of a key are adjacent) rather than one
 * head's 256-byte pieces 4 KiB apart; bf16 rows in place where AVX-512 is, else on fp32 copies.
 */
static void attend_rows(const plan *p, const item *it, const buffers *bu) {
    const int64_t D = p->D, Dv = p->Dv, R1 = (it->i1 - it->i0) * p->G, R = it->nh * R1;
    float *q = bu->qp, *o = bu->o;
    const uint16_t *krow[TILE_ROWS], *vrow[TILE_ROWS];
    memset(o, 0, (size_t) (R * Dv) * 4);
    for (int64_t r = 0; r < R; r++) {
        int64_t t, h;
        const char *src = q_row(p, it, r, &t, &h);
        sipu_row_to_f32_strided(src, p->q->dtype, p->q->strides[2], D, q + r * D);
        bu->m[r] = -INFINITY;
        bu->l[r] = 0;
    }
    int64_t blo, bhi, tmp;
    visible(p, it, it->i0, &blo, &tmp);
    visible(p, it, it->i1 - 1, &tmp, &bhi);
    if (blo < it->k0) blo = it->k0;
    if (bhi > it->k1) bhi = it->k1;
    for (int64_t j0 = blo; j0 < bhi; j0 += TILE_ROWS) {
        const int64_t n = bhi - j0 < TILE_ROWS ? bhi - j0 : TILE_ROWS;
        rows_scores(p, it, j0, n, q, bu, krow, vrow);
        for (int64_t r = 0; r < R; r++) {
            int64_t lo, hi;
            visible(p, it, it->i0 + (r % R1) / p->G, &lo, &hi);
            int64_t a = lo > j0 ? lo - j0 : 0, e = hi < j0 + n ? hi - j0 : n;
            float *srow = bu->s + r * TILE_ROWS;
            if (a >= e) {
                for (int64_t j = 0; j < n; j++) srow[j] = 0;
                continue;
            }
            softmax_step(p, srow, n, a, e, &bu->m[r], &bu->l[r], o + r * Dv, Dv);
        }
        rows_pv(p, it, n, bu, vrow);
    }
    if (it->part) {
        memcpy(it->part, o, (size_t) (R * Dv) * 4);
        memcpy(it->part + R * Dv, bu->m, (size_t) R * 4);
        memcpy(it->part + R * Dv + R, bu->l, (size_t) R * 4);
        return;
    }
    finish(p, it, R, o, Dv, bu->m, bu->l);
}

/* The splits of one decode item combined: each split's sums rescaled to the common maximum. */
static void merge_parts(const plan *p, const item *it, int64_t nsplit, int64_t R, const float *parts, int64_t stride, float *o, float *m,
                        float *l) {
    const int64_t Dv = p->Dv;
    for (int64_t r = 0; r < R; r++) {
        float mx = -INFINITY;
        for (int64_t sp = 0; sp < nsplit; sp++) {
            const float *ps = parts + sp * stride;
            if (ps[R * Dv + R + r] != 0) mx = fmaxf(mx, ps[R * Dv + r]);
        }
        float sum = 0;
        for (int64_t c = 0; c < Dv; c++) o[r * Dv + c] = 0;
        for (int64_t sp = 0; sp < nsplit; sp++) {
            const float *ps = parts + sp * stride;
            float ls = ps[R * Dv + R + r];
            if (ls == 0) continue; /* a split without visible keys */
            float w = expf(ps[R * Dv + r] - mx);
            sum += ls * w;
            for (int64_t c = 0; c < Dv; c++) o[r * Dv + c] += ps[r * Dv + c] * w;
        }
        m[r] = mx;
        l[r] = sum;
    }
    finish(p, it, R, o, Dv, m, l);
}

/* a sequence of so few query rows per kv head (decode) that the row path beats a tile of the fp32 GEMM */
static bool few_rows(const plan *p, int64_t Lq) { return Lq > 0 && Lq * p->G * 2 < p->isa->mr; }

static sipu_status check_index(const sipu_tensor *t, int64_t n, const char *fn, const char *arg) {
    sipu_status st = sipu_check(t, fn, arg);
    if (st) return st;
    if (t->dtype != SIPU_I32 || t->ndim != 1 || t->sizes[0] != n || (n > 1 && t->strides[0] != 1))
        return sipu_fail(SIPU_ERR_INVALID_ARGUMENT, "%s: %s must be contiguous int32 [%lld]", fn, arg, (long long) n);
    return SIPU_OK;
}

SIPU_API sipu_status sipu_attention(const sipu_tensor *out, const sipu_tensor *lse, const sipu_tensor *q, const sipu_tensor *k,
                                    const sipu_tensor *v, const sipu_tensor *cu_seqlens_q, const sipu_tensor *cu_seqlens_k,
                                    const sipu_tensor *seqused_k, const sipu_tensor *block_table, double softmax_scale,
                                    int64_t window_left, int64_t window_right, double softcap) {
    const char *fn = "sipu_attention";
    sipu_status st;
    if ((st = sipu_check(out, fn, "out")) || (st = sipu_check(q, fn, "q")) || (st = sipu_check(k, fn, "k")) || (st = sipu_check(v, fn, "v"))
        || (lse && (st = sipu_check(lse, fn, "softmax_lse"))))
        return st;
    const bool paged = block_table != NULL;
    const int kd = paged ? 4 : 3;
    if (q->ndim != 3 || out->ndim != 3 || k->ndim != kd || v->ndim != kd)
        return sipu_fail(SIPU_ERR_INVALID_ARGUMENT, "%s: expects q/out [T, H, D] and k/v %s", fn, paged ? "[blocks, page, Hk, D]" : "[T, Hk, D]");
    plan p = {0};
    p.out = out, p.lse = lse, p.q = q, p.k = k, p.v = v;
    const int64_t Tq = q->sizes[0];
    p.Hq = q->sizes[1], p.D = q->sizes[2], p.Hk = k->sizes[kd - 2], p.Dv = v->sizes[kd - 1];
    if (k->sizes[kd - 1] != p.D || v->sizes[kd - 2] != p.Hk || p.Hk == 0 || p.Hq % p.Hk != 0 || out->sizes[0] != Tq
        || out->sizes[1] != p.Hq || out->sizes[2] != p.Dv || (paged && (k->sizes[0] != v->sizes[0] || k->sizes[1] != v->sizes[1]))
        || (!paged && k->sizes[0] != v->sizes[0]))
        return sipu_fail(SIPU_ERR_INVALID_ARGUMENT, "%s: head counts or dims disagree (q [%lld, %lld, %lld])", fn, (long long) Tq,
                         (long long) p.Hq, (long long) p.D);
    if (!(q->dtype == SIPU_F32 || q->dtype == SIPU_F16 || q->dtype == SIPU_BF16) || k->dtype != q->dtype || v->dtype != q->dtype
        || out->dtype != q->dtype || (lse && (lse->dtype != SIPU_F32 || lse->ndim != 2 || lse->sizes[0] != p.Hq || lse->sizes[1] != Tq)))
        return sipu_fail(SIPU_ERR_UNSUPPORTED_DTYPE, "%s: q, k, v and out must share f32/f16/bf16; lse float32 [Hq, Tq]", fn);
    if ((st = sipu_check(cu_seqlens_q, fn, "cu_seqlens_q"))) return st;
    p.B = cu_seqlens_q->sizes[0] - 1;
    if (cu_seqlens_q->ndim != 1 || p.B < 0) return sipu_fail(SIPU_ERR_INVALID_ARGUMENT, "%s: cu_seqlens_q must be [B + 1]", fn);
    if ((st = check_index(cu_seqlens_q, p.B + 1, fn, "cu_seqlens_q"))) return st;
    if (!paged && (st = check_index(cu_seqlens_k, p.B + 1, fn, "cu_seqlens_k"))) return st;
    if ((paged || seqused_k) && (st = check_index(seqused_k, p.B, fn, "seqused_k"))) return st;
    p.cu_q = cu_seqlens_q->data, p.cu_k = paged ? NULL : cu_seqlens_k->data, p.used = seqused_k ? seqused_k->data : NULL;
    if (paged) {
        if ((st = sipu_check(block_table, fn, "block_table"))) return st;
        if (block_table->dtype != SIPU_I32 || block_table->ndim != 2 || block_table->sizes[0] != p.B
            || (block_table->sizes[1] > 1 && block_table->strides[1] != 1))
            return sipu_fail(SIPU_ERR_INVALID_ARGUMENT, "%s: block_table must be int32 [%lld, max_blocks], rows contiguous", fn, (long long) p.B);
        p.table = block_table->data, p.max_blocks = block_table->sizes[1], p.table_stride = block_table->strides[0], p.page = k->sizes[1];
    }
    /* Every index-like value checked before the first store. */
    const int64_t Tk = paged ? 0 : k->sizes[0];
    if (p.B >= 0 && (p.cu_q[0] != 0 || p.cu_q[p.B] != Tq))
        return sipu_fail(SIPU_ERR_INDEX_OUT_OF_RANGE, "%s: cu_seqlens_q must run from 0 to %lld", fn, (long long) Tq);
    for (int64_t b = 0; b < p.B; b++) {
        if (p.cu_q[b + 1] < p.cu_q[b]) return sipu_fail(SIPU_ERR_INDEX_OUT_OF_RANGE, "%s: cu_seqlens_q decreases at %lld", fn, (long long) b);
        if (!paged) {
            if (p.cu_k[b] < 0 || p.cu_k[b + 1] < p.cu_k[b] || p.cu_k[b + 1] > Tk)
                return sipu_fail(SIPU_ERR_INDEX_OUT_OF_RANGE, "%s: cu_seqlens_k[%lld..%lld] = %d..%d outside [0, %lld] or decreasing", fn,
                                 (long long) b, (long long) b + 1, p.cu_k[b], p.cu_k[b + 1], (long long) Tk);
            if (p.used && (p.used[b] < 0 || p.cu_k[b] + (int64_t) p.used[b] > Tk))
                return sipu_fail(SIPU_ERR_INDEX_OUT_OF_RANGE, "%s: seqused_k[%lld] = %d runs past the %lld keys", fn, (long long) b, p.used[b],
                                 (long long) Tk);
        } else {
            int64_t Lk = p.used[b];
            if (Lk < 0 || Lk > p.max_blocks * p.page)
                return sipu_fail(SIPU_ERR_INDEX_OUT_OF_RANGE, "%s: seqused_k[%lld] = %lld exceeds the block table's %lld slots", fn,
                                 (long long) b, (long long) Lk, (long long) (p.max_blocks * p.page));
            for (int64_t blk = 0; blk * p.page < Lk; blk++) {
                int32_t id = p.table[b * p.table_stride + blk];
                if (id < 0 || id >= k->sizes[0])
                    return sipu_fail(SIPU_ERR_INDEX_OUT_OF_RANGE, "%s: block_table[%lld, %lld] = %d outside [0, %lld)", fn, (long long) b,
                                     (long long) blk, id, (long long) k->sizes[0]);
            }
        }
    }
    p.scale = (float) softmax_scale, p.softcap = (float) softcap, p.wl = window_left, p.wr = window_right;
    if (Tq * p.Hq == 0) return SIPU_OK;
    p.isa = sipu_gk_pick(), p.vt = sipu_vt();
    /*
     * bf16 on the AMX tiles where the CPU has them. Elsewhere the fp32 tiles for every dtype: with only
     * D = 64-odd pairs per call, the bf16 pair tile (vdpbf16ps) measured slower here than fp32 FMA on
     * Zen 4 (14.8 vs 12.3 ms for the 512-token prefill on one thread).
     */
    p.amx = q->dtype == SIPU_BF16 && sipu_amx() && p.isa->interleave_bf16;
    p.kv_bf16 = k->dtype == SIPU_BF16 && v->dtype == SIPU_BF16 && k->strides[p.table ? 3 : 2] == 1 && v->strides[p.table ? 3 : 2] == 1 &&
                sipu_simd() >= SIPU_SIMD_AVX512;
    p.mr = p.amx ? GK_AMX_MR : p.isa->mr, p.nr = p.amx ? GK_AMX_NR : p.isa->nr;
    p.G = p.Hq / p.Hk;
    const int64_t target = (ROWS_TARGET + p.mr - 1) / p.mr * p.mr;
    p.qpos = p.G >= target ? 1 : target / p.G;
    p.rmax = p.qpos * p.G, p.rpad = (p.rmax + p.mr - 1) / p.mr * p.mr;
    p.dq = (p.D + 31) / 32 * 32;
    p.dvp = (p.Dv + p.nr - 1) / p.nr * p.nr;
    p.kwords = p.amx ? TILE * p.dq / 2 : TILE * p.D;
    p.tile_words = p.kwords + (p.amx ? TILE / 2 : TILE) * p.dvp;
    /*
     * Work items. A sequence whose rows per kv head are few (decode) is one item per group of HB kv
     * heads, and when that leaves the threads idle, each item's keys are split and merged after;
     * other sequences give one item per (kv head, block of qpos query positions).
     */
    const int64_t hb_max = 4096 / (p.D + p.Dv) > 1 ? 4096 / (p.D + p.Dv) : 1, HB = p.Hk < hb_max ? p.Hk : hb_max;
    const int64_t ngroups = (p.Hk + HB - 1) / HB;
    int64_t *first = malloc((size_t) (2 * p.B + 2) * sizeof(int64_t)), *dfirst = first + p.B + 1;
    if (!first) return sipu_fail(SIPU_ERR_OUT_OF_MEMORY, "%s: no memory", fn);
    int64_t nitems = 0, ndec = 0, maxlk = 0, r1max = 1;
    double work = 0;
    for (int64_t b = 0; b < p.B; b++) {
        const int64_t Lq = p.cu_q[b + 1] - p.cu_q[b], Lk = p.used ? p.used[b] : p.cu_k[b + 1] - p.cu_k[b];
        work += 2.0 * (double) Lq * (double) Lk * (double) (p.D + p.Dv) * (double) (p.G * p.Hk);
        if (few_rows(&p, Lq)) {
            nitems += ngroups, ndec += ngroups;
            if (Lk > maxlk) maxlk = Lk;
            if (Lq * p.G > r1max) r1max = Lq * p.G;
        } else {
            nitems += (Lq + p.qpos - 1) / p.qpos * p.Hk;
        }
    }
    int threads = sipu_threads_for(work);
    int64_t nsplit = 1;
    if (ndec > 0 && nitems < 2 * threads) {
        nsplit = (2 * threads + nitems - 1) / nitems;
        const int64_t most = (maxlk + 255) / 256; /* at least 256 keys per split */
        if (nsplit > most) nsplit = most > 1 ? most : 1;
    }
    first[0] = 0, dfirst[0] = 0;
    for (int64_t b = 0; b < p.B; b++) {
        const int64_t Lq = p.cu_q[b + 1] - p.cu_q[b];
        const bool dec = few_rows(&p, Lq);
        first[b + 1] = first[b] + (dec ? ngroups * nsplit : (Lq + p.qpos - 1) / p.qpos * p.Hk);
        dfirst[b + 1] = dfirst[b] + (dec ? ngroups : 0);
    }
    const int64_t items = first[p.B];
    if (threads > items) threads = (int) (items > 0 ? items : 1);
    /* per thread, in 64-byte pieces: qp, kp, s, pp, vp, o, m, l, tmp (the larger need of either path) */
#define UP(x) (((x) + 15) / 16 * 16)
#define MAX(a, b) ((a) > (b) ? (a) : (b))
    const int64_t w = MAX(p.D, p.Dv), rr = MAX(p.rpad, p.rmax), rd = HB * r1max; /* rows of a tile item, of a decode item */
    const int64_t nq = UP(MAX(rr * MAX(w, p.dq), rd * p.D)), nk = UP(MAX(TILE * MAX(w, p.dq), TILE_ROWS * HB * p.D));
    const int64_t ns = UP(MAX(rr * TILE, rd * TILE_ROWS));
    const int64_t npp = UP(rr * TILE), nv = UP(MAX(TILE * MAX(p.dvp, p.Dv), TILE_ROWS * HB * p.Dv));
    const int64_t no = UP(MAX(rr * p.dvp, rd * p.Dv)), nm = UP(MAX(rr, rd)), ntmp = UP(MAX(w, p.dq));
    const int64_t per = nq + nk + ns + npp + nv + no + 2 * nm + ntmp, part_stride = rd * (p.Dv + 2);
#undef UP
#undef MAX
    /*
     * Sequences with several query blocks per kv head have their key tiles packed once, up front
     * (every block would otherwise pack the same tiles again), while that copy stays within 256 MiB.
     */
    const int64_t tile_words = p.tile_words;
    int64_t *pfirst = malloc((size_t) (2 * p.B + 2) * sizeof(int64_t)), *poff = pfirst ? pfirst + p.B + 1 : NULL;
    if (!pfirst) {
        free(first);
        return sipu_fail(SIPU_ERR_OUT_OF_MEMORY, "%s: no memory", fn);
    }
    pfirst[0] = 0;
    int64_t pwords = 0;
    for (int64_t b = 0; b < p.B; b++) {
        const int64_t Lq = p.cu_q[b + 1] - p.cu_q[b], Lk = p.used ? p.used[b] : p.cu_k[b + 1] - p.cu_k[b];
        const bool dec = few_rows(&p, Lq), many = !dec && Lq > p.qpos && Lk > 0;
        const int64_t nt = many ? (Lk + TILE - 1) / TILE : 0;
        poff[b] = many ? pwords : -1;
        pwords += nt * p.Hk * tile_words;
        pfirst[b + 1] = pfirst[b] + nt;
    }
    const int64_t ptasks = pwords * 4 <= ((int64_t) 256 << 20) ? pfirst[p.B] : 0;
    float *pre = ptasks ? sipu_alloc_scratch((size_t) pwords * sizeof(float)) : NULL;
    if (ptasks && !pre) {
        free(first), free(pfirst);
        return sipu_fail(SIPU_ERR_OUT_OF_MEMORY, "%s: no memory for the packed keys", fn);
    }
    float *scratch = aligned_alloc(64, (size_t) threads * (size_t) per * sizeof(float));
    float *parts = nsplit > 1 ? malloc((size_t) (ndec * nsplit * part_stride) * sizeof(float)) : NULL;
    if (!scratch || (nsplit > 1 && !parts)) {
        free(first), free(pfirst), free(pre), free(scratch), free(parts);
        return sipu_fail(SIPU_ERR_OUT_OF_MEMORY, "%s: no memory for %d threads' tiles", fn, threads);
    }
    #pragma omp parallel num_threads(threads) if (threads > 1)
    {
        #ifdef _OPENMP
        float *mine = scratch + (size_t) omp_get_thread_num() * (size_t) per;
        #else
        float *mine = scratch;
        #endif
        buffers bu;
        bu.qp = mine, bu.kp = bu.qp + nq, bu.s = bu.kp + nk, bu.pp = bu.s + ns, bu.vp = bu.pp + npp, bu.o = bu.vp + nv;
        bu.m = bu.o + no, bu.l = bu.m + nm, bu.tmp = bu.l + nm;
        if (p.amx) sipu_gk_amx_begin();
        #pragma omp for schedule(dynamic, 1)
        for (int64_t x = 0; x < ptasks; x++) {
            const int64_t lo = sequence_of(pfirst, p.B, x);
            const int64_t Lk = p.used ? p.used[lo] : p.cu_k[lo + 1] - p.cu_k[lo], nt = (Lk + TILE - 1) / TILE, local = x - pfirst[lo];
            const int64_t j0 = local * TILE, n = Lk - j0 < TILE ? Lk - j0 : TILE;
            /* tile `local` of every kv head; head hk's tiles are at poff + hk * nt * tile_words */
            float *kp = pre + poff[lo] + local * tile_words;
            for (int64_t hk = 0; hk < p.Hk; hk++) memset(kp + hk * nt * tile_words, 0, (size_t) tile_words * 4);
            pack_keys(&p, lo, 0, p.Hk, j0, n, kp, kp + p.kwords, nt * tile_words, bu.tmp);
        }
        /* (the implicit barrier: every tile is packed before any block reads it) */
        #pragma omp for schedule(dynamic, 1)
        for (int64_t x = 0; x < items; x++) {
            const int64_t lo = sequence_of(first, p.B, x);
            item it;
            it.b = lo;
            it.Lq = p.cu_q[lo + 1] - p.cu_q[lo];
            it.Lk = p.used ? p.used[lo] : p.cu_k[lo + 1] - p.cu_k[lo];
            it.k0 = 0, it.k1 = it.Lk, it.part = NULL, it.kpre = NULL;
            const int64_t local = x - first[lo];
            if (dfirst[lo + 1] > dfirst[lo]) {
                const int64_t g = local / nsplit, sp = local % nsplit;
                it.hk = g * HB, it.nh = p.Hk - it.hk < HB ? p.Hk - it.hk : HB;
                it.i0 = 0, it.i1 = it.Lq;
                if (nsplit > 1) {
                    it.k0 = it.Lk * sp / nsplit, it.k1 = it.Lk * (sp + 1) / nsplit;
                    it.part = parts + ((dfirst[lo] + g) * nsplit + sp) * part_stride;
                }
                attend_rows(&p, &it, &bu);
            } else {
                const int64_t nblk = (it.Lq + p.qpos - 1) / p.qpos;
                /* the last (longest, under a causal mask) query blocks of a head first */
                const int64_t qb = nblk - 1 - local % nblk;
                it.hk = local / nblk, it.nh = 1;
                if (pre && poff[lo] >= 0) it.kpre = pre + poff[lo] + it.hk * ((it.Lk + TILE - 1) / TILE) * tile_words;
                it.i0 = qb * p.qpos;
                it.i1 = it.i0 + p.qpos < it.Lq ? it.i0 + p.qpos : it.Lq;
                attend_tiles(&p, &it, &bu);
            }
        }
        if (nsplit > 1) {
            /* the implicit barrier of the loop above has every split written */
            #pragma omp for schedule(dynamic, 1)
            for (int64_t d = 0; d < ndec; d++) {
                const int64_t lo = sequence_of(dfirst, p.B, d);
                item it;
                it.b = lo;
                it.Lq = p.cu_q[lo + 1] - p.cu_q[lo];
                it.Lk = p.used ? p.used[lo] : p.cu_k[lo + 1] - p.cu_k[lo];
                const int64_t g = d - dfirst[lo];
                it.hk = g * HB, it.nh = p.Hk - it.hk < HB ? p.Hk - it.hk : HB;
                it.i0 = 0, it.i1 = it.Lq, it.k0 = 0, it.k1 = it.Lk, it.part = NULL;
                const int64_t R = it.nh * it.Lq * p.G;
                merge_parts(&p, &it, nsplit, R, parts + d * nsplit * part_stride, part_stride, bu.o, bu.m, bu.l);
            }
        }
        if (p.amx) sipu_gk_amx_end();
    }
    free(scratch);
    free(parts);
    free(pre);
    free(pfirst);
    free(first);
    return SIPU_OK;
}
