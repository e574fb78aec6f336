#include "iter.h"
#include "convert.h"

typedef struct {
    int nops, ndim;                       /* ndim after coalescing; dim 0 is the innermost */
    int64_t size[SIPU_MAX_DIMS];
    int64_t stride[SIPU_ITER_MAX_OPS][SIPU_MAX_DIMS];
    char *base[SIPU_ITER_MAX_OPS];
} plan;

static void make_plan(plan *p, int nops, const sipu_tensor *const *ops) {
    const sipu_tensor *o = ops[0];
    p->nops = nops;
    p->ndim = 0;
    for (int k = 0; k < nops; k++) p->base[k] = (char *) ops[k]->data;
    for (int d = o->ndim - 1; d >= 0; d--) {
        int64_t sz = o->sizes[d];
        if (sz == 1) continue;
        int j = p->ndim - 1;
        bool merge = j >= 0;
        for (int k = 0; merge && k < nops; k++) {
            int64_t bs = ops[k]->strides[d] * sipu_itemsize(ops[k]->dtype);
            merge = bs == p->stride[k][j] * p->size[j];
        }
        if (merge) {
            p->size[j] *= sz;
            continue;
        }
        p->size[p->ndim] = sz;
        for (int k = 0; k < nops; k++) p->stride[k][p->ndim] = ops[k]->strides[d] * sipu_itemsize(ops[k]->dtype);
        p->ndim++;
    }
    if (p->ndim == 0) {
        p->ndim = 1;
        p->size[0] = 1;
        for (int k = 0; k < nops; k++) p->stride[k][0] = 0;
    }
}

/* Runs the inner loop over outer rows [r0, r1) and inner elements [i0, i1). */
static void run_range(const plan *p, int64_t r0, int64_t r1, int64_t i0, int64_t i1, sipu_loop_fn fn, void *ctx) {
    char *ptrs[SIPU_ITER_MAX_OPS];
    int64_t inner_stride[SIPU_ITER_MAX_OPS];
    for (int k = 0; k < p->nops; k++) inner_stride[k] = p->stride[k][0];
    for (int64_t r = r0; r < r1; r++) {
        int64_t rem = r;
        for (int k = 0; k < p->nops; k++) ptrs[k] = p->base[k] + i0 * p->stride[k][0];
        for (int d = 1; d < p->ndim; d++) {
            int64_t idx = rem % p->size[d];
            rem /= p->size[d];
            for (int k = 0; k < p->nops; k++) ptrs[k] += idx * p->stride[k][d];
        }
        fn(i1 - i0, ptrs, inner_stride, ctx);
    }
}

/* Below this many elements a second thread costs more than it saves. */
#define PARALLEL_GRAIN 32768

void sipu_iter_run(int nops, const sipu_tensor *const *ops, sipu_loop_fn fn, void *ctx) {
    if (sipu_numel(ops[0]) == 0) return;
    plan p;
    make_plan(&p, nops, ops);
    int64_t inner = p.size[0], rows = 1;
    for (int d = 1; d < p.ndim; d++) rows *= p.size[d];
    int threads = sipu_threads();
    if (threads <= 1 || rows * inner < PARALLEL_GRAIN) {
        run_range(&p, 0, rows, 0, inner, fn, ctx);
        return;
    }
    if (rows >= threads) {
        #pragma omp parallel for num_threads(threads) schedule(static)
        for (int64_t r = 0; r < rows; r++) run_range(&p, r, r + 1, 0, inner, fn, ctx);
        return;
    }
    /* Few long rows: split each row into per-thread chunks (multiples of 64 elements). */
    int64_t chunk = ((inner + threads - 1) / threads + 63) / 64 * 64;
    int64_t chunks = (inner + chunk - 1) / chunk;
    #pragma omp parallel for collapse(2) num_threads(threads) schedule(static)
    for (int64_t r = 0; r < rows; r++)
        for (int64_t c = 0; c < chunks; c++) {
            int64_t i0 = c * chunk, i1 = i0 + chunk < inner ? i0 + chunk : inner;
            run_range(&p, r, r + 1, i0, i1, fn, ctx);
        }
}

void sipu_row_to_f32_strided(const void *src, int32_t t, int64_t stride, int64_t n, float *dst) {
    if (stride == 1 && (t == SIPU_F32 || t == SIPU_BF16 || t == SIPU_F16)) {
        sipu_vt()->row_to_f32(t, n, src, dst);
        return;
    }
    const int64_t step = stride * sipu_itemsize(t);
    for (int64_t d = 0; d < n; d++) dst[d] = load_f32((const char *) src + d * step, t);
}
