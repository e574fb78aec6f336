/*
 * Advanced indexing, after PyTorch's index / index_put kernels: the indexed tensor arrives restrided
 * to the result's shape (stride 0 on the dimensions an index replaces) and every index tensor is
 * broadcast to that shape; element e then lives at base(e) + sum_k index_k(e) * strides[k]. One
 * gather and one scatter serve index, index_select, embedding, gather, scatter_ and index_put_.
 * Every index is validated in a pre-pass, so a bad one fails the call before anything is written.
 */
#include "convert.h"
#include "internal.h"

#include <stdio.h>

#define SIPU_MAX_INDICES SIPU_MAX_DIMS

typedef struct {
    int nd;                       /* dims of the result shape */
    int64_t sizes[SIPU_MAX_DIMS];
    int nops;                     /* operand 0 = out/dst, 1 = src/values (or none), then the indices */
    const sipu_tensor *ops[SIPU_MAX_INDICES + 2];
} walk;

/* Element offsets (in elements) of every operand at flat position `pos` of the result. */
static void offsets_at(const walk *w, int64_t pos, int64_t *off) {
    for (int k = 0; k < w->nops; k++) off[k] = 0;
    for (int d = w->nd - 1; d >= 0; d--) {
        int64_t i = pos % w->sizes[d];
        pos /= w->sizes[d];
        for (int k = 0; k < w->nops; k++) off[k] += i * w->ops[k]->strides[d];
    }
}

static sipu_status check_common(const char *fn, const sipu_tensor *res, const sipu_tensor *other, int32_t n,
                                const sipu_tensor *const *indices, const int64_t *sizes, walk *w) {
    sipu_status st;
    if ((st = sipu_check(res, fn, "out"))) return st;
    if (other && ((st = sipu_check(other, fn, "values")) || (st = sipu_check_same_shape(other, res, fn, "values")))) return st;
    if (other && other->dtype != res->dtype)
        return sipu_fail(SIPU_ERR_UNSUPPORTED_DTYPE, "%s: values are %s, the indexed tensor %s", fn,
                         sipu_dtype_name(other->dtype), sipu_dtype_name(res->dtype));
    if (n < 1 || n > SIPU_MAX_INDICES || !indices || !sizes)
        return sipu_fail(SIPU_ERR_INVALID_ARGUMENT, "%s: between 1 and %d indices, got %d", fn, SIPU_MAX_INDICES, n);
    w->nd = res->ndim;
    for (int d = 0; d < res->ndim; d++) w->sizes[d] = res->sizes[d];
    w->nops = 0;
    w->ops[w->nops++] = res;
    if (other) w->ops[w->nops++] = other;
    for (int k = 0; k < n; k++) {
        if ((st = sipu_check(indices[k], fn, "indices")) || (st = sipu_check_same_shape(indices[k], res, fn, "indices"))) return st;
        if (indices[k]->dtype != SIPU_I64 && indices[k]->dtype != SIPU_I32)
            return sipu_fail(SIPU_ERR_UNSUPPORTED_DTYPE, "%s: indices must be int64 or int32, got %s", fn, sipu_dtype_name(indices[k]->dtype));
        if (sizes[k] < 0) return sipu_fail(SIPU_ERR_INVALID_ARGUMENT, "%s: negative dimension size %lld", fn, (long long) sizes[k]);
        w->ops[w->nops++] = indices[k];
    }
    return SIPU_OK;
}

static inline int64_t index_at(const sipu_tensor *t, int64_t off) {
    return t->dtype == SIPU_I64 ? ((const int64_t *) t->data)[off] : ((const int32_t *) t->data)[off];
}

/* The pre-pass: every index within [-size, size). */
static sipu_status validate(const char *fn, const walk *w, int first, int32_t n, const int64_t *sizes, bool wrap) {
    int64_t numel = 1;
    for (int d = 0; d < w->nd; d++) numel *= w->sizes[d];
    int64_t bad_pos = -1, bad_val = 0;
    int bad_k = 0;
    /* indices constant along the innermost dim (embedding, index_select of rows): one check per run */
    int64_t step = 1;
    if (w->nd > 0) {
        step = w->sizes[w->nd - 1];
        for (int k = 0; k < n && step > 1; k++)
            if (w->ops[first + k]->strides[w->nd - 1] != 0) step = 1;
    }
    const int64_t runs = step > 0 ? numel / step : 0;
    #pragma omp parallel for num_threads(sipu_threads()) if (runs > 65536)
    for (int64_t run = 0; run < runs; run++) {
        const int64_t pos = run * step;
        int64_t off[SIPU_MAX_INDICES + 2];
        offsets_at(w, pos, off);
        for (int k = 0; k < n; k++) {
            int64_t v = index_at(w->ops[first + k], off[first + k]);
            if (v < (wrap ? -sizes[k] : 0) || v >= sizes[k]) {
                #pragma omp critical(sipu_index_bad)
                if (bad_pos < 0 || pos < bad_pos) { bad_pos = pos; bad_val = v; bad_k = k; }
            }
        }
    }
    if (bad_pos >= 0)
        return sipu_fail(SIPU_ERR_INDEX_OUT_OF_RANGE, "%s: index %lld is out of bounds for dimension with size %lld (index tensor %d)",
                         fn, (long long) bad_val, (long long) sizes[bad_k], bad_k);
    return SIPU_OK;
}

static inline int64_t source_offset(const walk *w, int first, int32_t n, const int64_t *sizes, const int64_t *strides, const int64_t *off) {
    int64_t o = 0;
    for (int k = 0; k < n; k++) {
        int64_t v = index_at(w->ops[first + k], off[first + k]);
        if (v < 0) v += sizes[k];
        o += v * strides[k];
    }
    return o;
}

SIPU_API sipu_status sipu_index_gather(const sipu_tensor *out, const sipu_tensor *src, int32_t n,
                                       const sipu_tensor *const *indices, const int64_t *sizes, const int64_t *strides,
                                       int32_t wrap) {
    const char *fn = "sipu_index_gather";
    walk w;
    sipu_status st;
    if ((st = check_common(fn, src, NULL, n, indices, sizes, &w))) return st;
    if ((st = sipu_check(out, fn, "out")) || (st = sipu_check_same_shape(out, src, fn, "out"))) return st;
    if (out->dtype != src->dtype) return sipu_fail(SIPU_ERR_UNSUPPORTED_DTYPE, "%s: out and src dtypes differ", fn);
    /* operands: 0 = src, then indices; out walked alongside as the last one */
    w.ops[w.nops++] = out;
    if ((st = validate(fn, &w, 1, n, sizes, wrap != 0))) return st;
    int64_t numel = sipu_numel(out);
    if (numel == 0) return SIPU_OK;
    int item = sipu_itemsize(out->dtype);
    int last = w.nops - 1, nd = w.nd;
    /* Runs along the innermost dim; a run no index varies along (embedding rows) is one memcpy. */
    int64_t inner = nd ? w.sizes[nd - 1] : 1, outer = numel / inner;
    bool rows = nd > 0 && src->strides[nd - 1] == 1 && out->strides[nd - 1] == 1;
    for (int k = 1; k <= n && rows; k++) rows = w.ops[k]->strides[nd - 1] == 0;
    #pragma omp parallel for num_threads(sipu_threads()) if (numel > 65536)
    for (int64_t o = 0; o < outer; o++) {
        int64_t off[SIPU_MAX_INDICES + 3];
        offsets_at(&w, o * inner, off);
        if (rows) {
            int64_t s = off[0] + source_offset(&w, 1, n, sizes, strides, off);
            memcpy((char *) out->data + off[last] * item, (const char *) src->data + s * item, (size_t) (inner * item));
            continue;
        }
        for (int64_t i = 0; i < inner; i++) {
            int64_t s = off[0] + source_offset(&w, 1, n, sizes, strides, off);
            memcpy((char *) out->data + off[last] * item, (const char *) src->data + s * item, (size_t) item);
            if (nd) for (int k = 0; k < w.nops; k++) off[k] += w.ops[k]->strides[nd - 1];
        }
    }
    return SIPU_OK;
}

SIPU_API sipu_status sipu_index_scatter(const sipu_tensor *dst, const sipu_tensor *values, int32_t n,
                                        const sipu_tensor *const *indices, const int64_t *sizes, const int64_t *strides,
                                        int32_t wrap, int32_t accumulate) {
    const char *fn = "sipu_index_scatter";
    walk w;
    sipu_status st;
    if (!values) return sipu_fail(SIPU_ERR_INVALID_ARGUMENT, "%s: values missing", fn);
    if ((st = check_common(fn, dst, values, n, indices, sizes, &w))) return st;
    if (accumulate && dst->dtype == SIPU_BOOL) return sipu_fail(SIPU_ERR_UNSUPPORTED_DTYPE, "%s: accumulate into bool", fn);
    if ((st = validate(fn, &w, 2, n, sizes, wrap != 0))) return st;
    int64_t numel = sipu_numel(dst);
    int item = sipu_itemsize(dst->dtype);
    bool flt = sipu_is_float(dst->dtype);
    /* Serial: duplicate indices must all accumulate, and without accumulate the last write wins. */
    for (int64_t pos = 0; pos < numel; pos++) {
        int64_t off[SIPU_MAX_INDICES + 2];
        offsets_at(&w, pos, off);
        char *d = (char *) dst->data + (off[0] + source_offset(&w, 2, n, sizes, strides, off)) * item;
        const char *v = (const char *) values->data + off[1] * item;
        if (!accumulate) memcpy(d, v, (size_t) item);
        else if (flt) store_f64(d, dst->dtype, dst->dtype == SIPU_F64 ? load_f64(d, dst->dtype) + load_f64(v, dst->dtype)
                                                                      : (double) (load_f32(d, dst->dtype) + load_f32(v, dst->dtype)));
        else store_i64(d, dst->dtype, (int64_t) ((uint64_t) load_i64(d, dst->dtype) + (uint64_t) load_i64(v, dst->dtype)));
    }
    return SIPU_OK;
}
