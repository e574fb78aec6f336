/*
 * Varlen and paged attention (flash-attention's varlen_fwd, vLLM's unified attention, and the
 * batched _flash_attn_forward mapped onto the same packed form): one query row and head at a time,
 * keys visited in tiles with an online softmax (running max, running sum, fp32 accumulator), so the
 * memory per row is one tile of scores and one output row, never an Lq x Lk matrix. Decode (one
 * query per sequence) is the same loop over its visible keys. Rows are spread over threads.
 *
 * Masks (SEMANTICS.md §11): query i of a sequence sits at position i + Lk - Lq; key j is visible
 * iff j <= pos + wr (wr >= 0) and j >= pos - wl (wl >= 0). Scores are scale * q.k, soft-capped as
 * softcap * tanh(s / softcap) when softcap > 0. A row without a visible key gives 0 and lse +inf.
 */
#include "convert.h"
#include "internal.h"

#include <math.h>
#include <stdlib.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#define TILE 64

typedef struct {
    const sipu_tensor *out, *lse, *q, *k, *v;
    const int32_t *cu_q, *cu_k, *used, *table;
    int64_t B, Hq, Hk, D, Dv, page, max_blocks, table_stride;
    float scale, softcap;
    int64_t wl, wr;
} plan;

static inline const char *kv_row(const plan *p, const sipu_tensor *t, int64_t b, int64_t j, int64_t hk) {
    const int item = sipu_itemsize(t->dtype);
    if (p->table) {
        int64_t block = p->table[b * p->table_stride + j / p->page];
        return (const char *) t->data + (block * t->strides[0] + (j % p->page) * t->strides[1] + hk * t->strides[2]) * item;
    }
    return (const char *) t->data + ((p->cu_k[b] + j) * t->strides[0] + hk * t->strides[1]) * item;
}

static inline void load_row(const char *src, int32_t dtype, int64_t stride, int64_t n, float *dst) {
    const int item = sipu_itemsize(dtype);
    for (int64_t d = 0; d < n; d++) dst[d] = load_f32(src + d * stride * item, dtype);
}

/* One (query row t, head h): online softmax over the visible keys of its sequence b. */
static void attend_row(const plan *p, int64_t b, int64_t t, int64_t h, float *qrow, float *krow, float *acc, float *s) {
    const int64_t Lq = p->cu_q[b + 1] - p->cu_q[b], i = t - p->cu_q[b];
    const int64_t Lk = p->used ? p->used[b] : p->cu_k[b + 1] - p->cu_k[b];
    const int64_t pos = i + Lk - Lq, hk = h / (p->Hq / p->Hk);
    int64_t lo = 0, hi = Lk; /* visible keys [lo, hi) */
    if (p->wl >= 0 && pos - p->wl > lo) lo = pos - p->wl;
    if (p->wr >= 0 && pos + p->wr + 1 < hi) hi = pos + p->wr + 1;
    const sipu_tensor *q = p->q, *k = p->k, *v = p->v, *out = p->out;
    const int kstride = p->table ? 3 : 2;
    load_row((const char *) q->data + (t * q->strides[0] + h * q->strides[1]) * sipu_itemsize(q->dtype), q->dtype, q->strides[2], p->D, qrow);
    float m = -INFINITY, l = 0;
    for (int64_t d = 0; d < p->Dv; d++) acc[d] = 0;
    for (int64_t j0 = lo; j0 < hi; j0 += TILE) {
        int64_t n = hi - j0 < TILE ? hi - j0 : TILE;
        float tmax = -INFINITY;
        for (int64_t j = 0; j < n; j++) {
            load_row(kv_row(p, k, b, j0 + j, hk), k->dtype, k->strides[kstride], p->D, krow);
            float sc = sipu_dot_f32(qrow, krow, p->D) * p->scale;
            if (p->softcap > 0) sc = p->softcap * tanhf(sc / p->softcap);
            s[j] = sc;
            tmax = fmaxf(tmax, sc);
        }
        float mnew = fmaxf(m, tmax), corr = expf(m - mnew);
        l *= corr;
        for (int64_t d = 0; d < p->Dv; d++) acc[d] *= corr;
        for (int64_t j = 0; j < n; j++) {
            float w = expf(s[j] - mnew);
            l += w;
            load_row(kv_row(p, v, b, j0 + j, hk), v->dtype, v->strides[kstride], p->Dv, krow);
            for (int64_t d = 0; d < p->Dv; d++) acc[d] += w * krow[d];
        }
        m = mnew;
    }
    const int oi = sipu_itemsize(out->dtype);
    char *o = (char *) out->data + (t * out->strides[0] + h * out->strides[1]) * oi;
    for (int64_t d = 0; d < p->Dv; d++) store_f32(o + d * out->strides[2] * oi, out->dtype, l > 0 ? acc[d] / l : 0.0f);
    if (p->lse) ((float *) p->lse->data)[h * p->lse->strides[0] + t * p->lse->strides[1]] = l > 0 ? m + logf(l) : INFINITY;
}

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
    const int64_t rows = Tq * p.Hq;
    if (rows == 0) return SIPU_OK;
    const int threads = sipu_threads();
    const int64_t per = 2 * (p.D > p.Dv ? p.D : p.Dv) + p.Dv + TILE;
    float *scratch = malloc((size_t) threads * (size_t) per * sizeof(float));
    if (!scratch) return sipu_fail(SIPU_ERR_OUT_OF_MEMORY, "%s: no memory for %d rows of scratch", fn, threads);
    #pragma omp parallel num_threads(threads) if (rows > 1)
    {
        #ifdef _OPENMP
        float *mine = scratch + (size_t) omp_get_thread_num() * (size_t) per;
        #else
        float *mine = scratch;
        #endif
        const int64_t w = p.D > p.Dv ? p.D : p.Dv;
        float *qrow = mine, *krow = mine + w, *acc = mine + 2 * w, *s = acc + p.Dv;
        #pragma omp for schedule(dynamic, 8)
        for (int64_t r = 0; r < rows; r++) {
            int64_t t = r / p.Hq, h = r % p.Hq, lo = 0, hi = p.B; /* the sequence holding row t: cu_q[lo] <= t < cu_q[lo + 1] */
            while (hi - lo > 1) {
                int64_t mid = (lo + hi) / 2;
                if (p.cu_q[mid] <= t) lo = mid;
                else hi = mid;
            }
            attend_row(&p, lo, t, h, qrow, krow, acc, s);
        }
    }
    free(scratch);
    return SIPU_OK;
}
