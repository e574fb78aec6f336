/*
 * Ordering and counting kernels: sort and topk over rows, nonzero, bincount, isin, and the
 * counter-based exponential sampler.
 *
 * Keys: floating types compare as doubles (exact for every float dtype) with NaN above every number,
 * as PyTorch orders them; integer and bool types compare as int64. Sorting is a stable merge sort of
 * row positions, so equal keys keep their input order (sort.stable) and ties in topk go to the lower
 * index. Values are copied from the input element the position names, so they are bit-exact.
 */
#include "convert.h"
#include "internal.h"
#include "iter.h"

#include <math.h>
#include <stdlib.h>
#ifdef _OPENMP
#include <omp.h>
#endif

typedef struct {
    const double *f; /* float keys, or NULL */
    const int64_t *i; /* integer keys otherwise */
    bool desc;
} keys;

/* Whether position a goes strictly before position b. */
static inline bool before(const keys *k, int64_t a, int64_t b) {
    if (k->f) {
        double x = k->f[a], y = k->f[b];
        if (k->desc) return (x != x && y == y) || x > y;
        return (y != y && x == x) || x < y;
    }
    return k->desc ? k->i[a] > k->i[b] : k->i[a] < k->i[b];
}

/* Stable: insertion sort of runs of 16, then bottom-up merges; the result may land in tmp. */
static int64_t *merge_sort(const keys *k, int64_t *idx, int64_t *tmp, int64_t n) {
    const int64_t RUN = 16;
    for (int64_t lo = 0; lo < n; lo += RUN) {
        int64_t hi = lo + RUN < n ? lo + RUN : n;
        for (int64_t j = lo + 1; j < hi; j++) {
            int64_t v = idx[j], p = j;
            while (p > lo && before(k, v, idx[p - 1])) {
                idx[p] = idx[p - 1];
                p--;
            }
            idx[p] = v;
        }
    }
    int64_t *src = idx, *dst = tmp;
    for (int64_t w = RUN; w < n; w *= 2) {
        for (int64_t lo = 0; lo < n; lo += 2 * w) {
            int64_t mid = lo + w < n ? lo + w : n, hi = lo + 2 * w < n ? lo + 2 * w : n;
            int64_t a = lo, b = mid, o = lo;
            while (a < mid && b < hi) dst[o++] = before(k, src[b], src[a]) ? src[b++] : src[a++];
            while (a < mid) dst[o++] = src[a++];
            while (b < hi) dst[o++] = src[b++];
        }
        int64_t *t = src;
        src = dst;
        dst = t;
    }
    return src;
}

static void load_keys(const sipu_tensor *in, int64_t r, double *f, int64_t *i) {
    const int item = sipu_itemsize(in->dtype);
    const int64_t n = in->sizes[1];
    const char *row = (const char *) in->data + r * in->strides[0] * item;
    for (int64_t j = 0; j < n; j++) {
        const char *p = row + j * in->strides[1] * item;
        if (f) f[j] = load_f64(p, in->dtype);
        else i[j] = load_i64(p, in->dtype);
    }
}

/* values[r, j] = in[r, pos[j]], indices[r, j] = pos[j] for j < count. */
static void store_row(const sipu_tensor *values, const sipu_tensor *indices, const sipu_tensor *in, int64_t r,
                      const int64_t *pos, int64_t count) {
    const int item = sipu_itemsize(in->dtype);
    const char *row = (const char *) in->data + r * in->strides[0] * item;
    char *vr = (char *) values->data + r * values->strides[0] * item;
    int64_t *ir = (int64_t *) indices->data + r * indices->strides[0];
    for (int64_t j = 0; j < count; j++) {
        memcpy(vr + j * values->strides[1] * item, row + pos[j] * in->strides[1] * item, (size_t) item);
        ir[j * indices->strides[1]] = pos[j];
    }
}

static sipu_status check_rows(const sipu_tensor *values, const sipu_tensor *indices, const sipu_tensor *in, int64_t cols,
                              const char *fn) {
    sipu_status st;
    if ((st = sipu_check(values, fn, "values")) || (st = sipu_check(indices, fn, "indices")) || (st = sipu_check(in, fn, "self")))
        return st;
    if (in->ndim != 2 || values->ndim != 2 || indices->ndim != 2 || values->dtype != in->dtype || indices->dtype != SIPU_I64
        || values->sizes[0] != in->sizes[0] || indices->sizes[0] != in->sizes[0] || values->sizes[1] != cols
        || indices->sizes[1] != cols)
        return sipu_fail(SIPU_ERR_INVALID_ARGUMENT, "%s: expects self [R, N], values of self's dtype and int64 indices [R, %lld]",
                         fn, (long long) cols);
    return SIPU_OK;
}

/* Per-thread scratch for rows of n: keys, positions and the merge buffer. */
typedef struct {
    char *mem;
    size_t per;
} scratch;

static sipu_status scratch_alloc(scratch *s, int threads, int64_t n, const char *fn) {
    s->per = (size_t) (n + 1) * 3 * sizeof(int64_t);
    s->mem = malloc(s->per * (size_t) threads);
    if (!s->mem) return sipu_fail(SIPU_ERR_OUT_OF_MEMORY, "%s: no memory for rows of %lld elements", fn, (long long) n);
    return SIPU_OK;
}

/* a goes strictly before b for float keys: NaN above every number, as in before(). */
static inline bool f32_before(float a, float b, bool desc) {
    return desc ? (a != a && b == b) || a > b : (b != b && a == a) || a < b;
}

/*
 * topk of a contiguous fp32 row for k <= 64: the selection of order_rows on the floats themselves.
 * Once k are held, the running ISA's block test skips the 64-element blocks none of whose elements
 * can enter against the current k-th best (nearly all of a vocabulary-long row) in one pass.
 */
static void topk_f32(const float *x, int64_t n, int64_t k, bool desc, int64_t *idx) {
    const sipu_vtable *vt = sipu_vt();
    int64_t m = 0;
    for (int64_t j0 = 0; j0 < n; j0 += 64) {
        if (m == k) {
            float t = x[idx[k - 1]];
            if (desc && t != t) return; /* k NaNs taken: nothing can enter */
            j0 += vt->skip_blocks_f32(n - j0, x + j0, t, desc);
            if (j0 >= n) return;
        }
        int64_t j1 = j0 + 64 < n ? j0 + 64 : n;
        for (int64_t j = j0; j < j1; j++) {
            if (m == k && !f32_before(x[j], x[idx[k - 1]], desc)) continue;
            int64_t p = m < k ? m++ : k - 1;
            while (p > 0 && f32_before(x[j], x[idx[p - 1]], desc)) {
                idx[p] = idx[p - 1];
                p--;
            }
            idx[p] = j;
        }
    }
}

/*
 * Stable sort of a contiguous fp32 row (n < 2^31) by an LSD radix sort of order-preserving keys:
 * the float's bits with the sign folded so that unsigned order is numeric order, -0.0 keyed as 0.0
 * (equal, as comparisons see it), every NaN as the largest key; complemented for descending. Equal
 * keys keep their input order, as the merge sort does. k0/k1 and i0/i1 hold n each; the sorted
 * positions land in pos.
 */
static void radix_sort_f32(const float *x, int64_t n, bool desc, uint32_t *k0, uint32_t *k1, int32_t *i0, int32_t *i1, int64_t *pos) {
    for (int64_t j = 0; j < n; j++) {
        uint32_t u = f32_bits(x[j]);
        if (x[j] != x[j]) u = 0xFFFFFFFFu;
        else if (u == 0x80000000u) u = 0x80000000u; /* -0.0 takes the key of +0.0 (0 | sign bit) */
        else u = (u & 0x80000000u) ? ~u : u | 0x80000000u;
        k0[j] = desc ? ~u : u;
        i0[j] = (int32_t) j;
    }
    /* the four digit histograms in one pass over the keys */
    int64_t count[4][257];
    memset(count, 0, sizeof count);
    for (int64_t j = 0; j < n; j++)
        for (int d = 0; d < 4; d++) count[d][((k0[j] >> (8 * d)) & 0xFF) + 1]++;
    for (int d = 0; d < 4; d++) {
        int64_t *c = count[d];
        const int shift = 8 * d;
        if (c[((k0[0] >> shift) & 0xFF) + 1] == n) continue; /* one digit value: the pass would not move anything */
        for (int v = 0; v < 256; v++) c[v + 1] += c[v];
        for (int64_t j = 0; j < n; j++) {
            int64_t at = c[(k0[j] >> shift) & 0xFF]++;
            k1[at] = k0[j];
            i1[at] = i0[j];
        }
        uint32_t *tk = k0;
        k0 = k1, k1 = tk;
        int32_t *ti = i0;
        i0 = i1, i1 = ti;
    }
    for (int64_t j = 0; j < n; j++) pos[j] = i0[j];
}

/* The first k positions of each row in order (k = N sorts, k < N selects), written as values and indices. */
static sipu_status order_rows(const sipu_tensor *values, const sipu_tensor *indices, const sipu_tensor *in, int64_t k, bool desc,
                              const char *fn) {
    const int64_t R = in->sizes[0], N = in->sizes[1];
    if (R == 0 || k == 0) return SIPU_OK;
    const int threads = sipu_threads();
    scratch s;
    sipu_status st = scratch_alloc(&s, threads, N, fn);
    if (st) return st;
    const bool fl = sipu_is_float(in->dtype);
    #pragma omp parallel num_threads(threads) if (R > 1 && R * N > 16384)
    {
        #ifdef _OPENMP
        int64_t *buf = (int64_t *) (s.mem + s.per * (size_t) omp_get_thread_num());
        #else
        int64_t *buf = (int64_t *) s.mem;
        #endif
        int64_t *key = buf, *idx = buf + N + 1, *tmp = idx + N;
        keys kk = {fl ? (const double *) key : NULL, fl ? NULL : key, desc};
        #pragma omp for schedule(dynamic, 1)
        for (int64_t r = 0; r < R; r++) {
            const int64_t *best = idx;
            if (in->dtype == SIPU_F32 && (in->strides[1] == 1 || N == 1) && k <= 64 && k < N) {
                topk_f32((const float *) in->data + r * in->strides[0], N, k, desc, idx);
                store_row(values, indices, in, r, best, k);
                continue;
            }
            if (in->dtype == SIPU_F32 && (in->strides[1] == 1 || N == 1) && N < INT32_MAX) {
                uint32_t *k0 = (uint32_t *) key;
                int32_t *i0 = (int32_t *) tmp;
                radix_sort_f32((const float *) in->data + r * in->strides[0], N, desc, k0, k0 + N, i0, i0 + N, idx);
                store_row(values, indices, in, r, best, k);
                continue;
            }
            load_keys(in, r, fl ? (double *) key : NULL, fl ? NULL : key);
            if (k <= 64 && k < N) {
                /* Selection: idx[0..m) holds the best so far in order; most elements fail the first test. */
                int64_t m = 0;
                for (int64_t j = 0; j < N; j++) {
                    if (m == k && !before(&kk, j, idx[m - 1])) continue;
                    int64_t p = m < k ? m++ : k - 1;
                    while (p > 0 && before(&kk, j, idx[p - 1])) {
                        idx[p] = idx[p - 1];
                        p--;
                    }
                    idx[p] = j;
                }
            } else {
                for (int64_t j = 0; j < N; j++) idx[j] = j;
                best = merge_sort(&kk, idx, tmp, N);
            }
            store_row(values, indices, in, r, best, k);
        }
    }
    free(s.mem);
    return SIPU_OK;
}

SIPU_API sipu_status sipu_sort_rows(const sipu_tensor *values, const sipu_tensor *indices, const sipu_tensor *in, int32_t descending) {
    const char *fn = "sipu_sort_rows";
    sipu_status st = check_rows(values, indices, in, in && in->ndim == 2 ? in->sizes[1] : -1, fn);
    return st ? st : order_rows(values, indices, in, in->sizes[1], descending != 0, fn);
}

SIPU_API sipu_status sipu_topk_rows(const sipu_tensor *values, const sipu_tensor *indices, const sipu_tensor *in, int64_t k,
                                    int32_t largest) {
    const char *fn = "sipu_topk_rows";
    sipu_status st = check_rows(values, indices, in, k, fn);
    if (st) return st;
    if (k < 0 || k > in->sizes[1])
        return sipu_fail(SIPU_ERR_INVALID_ARGUMENT, "%s: k = %lld outside [0, %lld]", fn, (long long) k, (long long) in->sizes[1]);
    return order_rows(values, indices, in, k, largest != 0, fn);
}

/* ---- element walks in row-major order ----------------------------------------------------- */

typedef struct {
    int64_t idx[SIPU_MAX_DIMS];
    int64_t off; /* element offset */
} walk;

static void walk_at(const sipu_tensor *t, int64_t i, walk *w) {
    w->off = 0;
    for (int d = t->ndim - 1; d >= 0; d--) {
        int64_t s = t->sizes[d];
        w->idx[d] = s ? i % s : 0;
        i = s ? i / s : 0;
        w->off += w->idx[d] * t->strides[d];
    }
}

static void walk_next(const sipu_tensor *t, walk *w) {
    for (int d = t->ndim - 1; d >= 0; d--) {
        w->off += t->strides[d];
        if (++w->idx[d] < t->sizes[d]) return;
        w->off -= t->strides[d] * t->sizes[d];
        w->idx[d] = 0;
    }
}

static inline bool nonzero_at(const char *p, int32_t t) {
    return sipu_is_float(t) ? load_f64(p, t) != 0.0 : load_i64(p, t) != 0;
}

static int64_t count_nonzero(const sipu_tensor *in) {
    const int64_t n = sipu_numel(in);
    const int item = sipu_itemsize(in->dtype);
    int64_t count = 0;
    walk w;
    walk_at(in, 0, &w);
    for (int64_t i = 0; i < n; i++, walk_next(in, &w)) count += nonzero_at((const char *) in->data + w.off * item, in->dtype);
    return count;
}

SIPU_API sipu_status sipu_count_nonzero(const sipu_tensor *in, int64_t *count) {
    sipu_status st = sipu_check(in, "sipu_count_nonzero", "self");
    if (st) return st;
    if (!count) return sipu_fail(SIPU_ERR_INVALID_ARGUMENT, "sipu_count_nonzero: count is NULL");
    *count = count_nonzero(in);
    return SIPU_OK;
}

SIPU_API sipu_status sipu_nonzero(const sipu_tensor *out, const sipu_tensor *in) {
    const char *fn = "sipu_nonzero";
    sipu_status st;
    if ((st = sipu_check(out, fn, "out")) || (st = sipu_check(in, fn, "self"))) return st;
    const int64_t count = count_nonzero(in);
    if (out->dtype != SIPU_I64 || out->ndim != 2 || out->sizes[0] != count || out->sizes[1] != in->ndim)
        return sipu_fail(SIPU_ERR_INVALID_ARGUMENT, "%s: out must be int64 [%lld, %d]", fn, (long long) count, in->ndim);
    const int64_t n = sipu_numel(in);
    const int item = sipu_itemsize(in->dtype);
    int64_t *o = (int64_t *) out->data, row = 0;
    walk w;
    walk_at(in, 0, &w);
    for (int64_t i = 0; i < n; i++, walk_next(in, &w)) {
        if (!nonzero_at((const char *) in->data + w.off * item, in->dtype)) continue;
        for (int d = 0; d < in->ndim; d++) o[row * out->strides[0] + d * out->strides[1]] = w.idx[d];
        row++;
    }
    return SIPU_OK;
}

/* ---- bincount ------------------------------------------------------------------------------ */

SIPU_API sipu_status sipu_int_minmax(const sipu_tensor *in, int64_t *min, int64_t *max) {
    sipu_status st = sipu_check(in, "sipu_int_minmax", "self");
    if (st) return st;
    if (!sipu_is_int(in->dtype) || !min || !max)
        return sipu_fail(SIPU_ERR_INVALID_ARGUMENT, "sipu_int_minmax: expects an integer tensor and two results");
    const int64_t n = sipu_numel(in);
    const int item = sipu_itemsize(in->dtype);
    walk w;
    walk_at(in, 0, &w);
    for (int64_t i = 0; i < n; i++, walk_next(in, &w)) {
        int64_t v = load_i64((const char *) in->data + w.off * item, in->dtype);
        if (i == 0 || v < *min) *min = v;
        if (i == 0 || v > *max) *max = v;
    }
    return SIPU_OK;
}

SIPU_API sipu_status sipu_bincount(const sipu_tensor *out, const sipu_tensor *in, const sipu_tensor *weights) {
    const char *fn = "sipu_bincount";
    sipu_status st;
    if ((st = sipu_check(out, fn, "out")) || (st = sipu_check(in, fn, "self")) || (weights && (st = sipu_check(weights, fn, "weights"))))
        return st;
    if (in->ndim != 1 || out->ndim != 1 || !sipu_is_int(in->dtype) || (weights && (weights->ndim != 1 || weights->sizes[0] != in->sizes[0])))
        return sipu_fail(SIPU_ERR_INVALID_ARGUMENT, "%s: expects a 1-D integer self, 1-D out and weights of self's length", fn);
    const int64_t n = in->sizes[0], bins = out->sizes[0];
    const int item = sipu_itemsize(in->dtype);
    for (int64_t i = 0; i < n; i++) {
        int64_t v = load_i64((const char *) in->data + i * in->strides[0] * item, in->dtype);
        if (v < 0 || v >= bins)
            return sipu_fail(SIPU_ERR_INDEX_OUT_OF_RANGE, "%s: value %lld at %lld outside [0, %lld)", fn, (long long) v,
                             (long long) i, (long long) bins);
    }
    const int oi = sipu_itemsize(out->dtype);
    const bool fl = sipu_is_float(out->dtype);
    for (int64_t b = 0; b < bins; b++) {
        char *p = (char *) out->data + b * out->strides[0] * oi;
        if (fl) store_f64(p, out->dtype, 0.0);
        else store_i64(p, out->dtype, 0);
    }
    const int wi = weights ? sipu_itemsize(weights->dtype) : 0;
    for (int64_t i = 0; i < n; i++) {
        int64_t v = load_i64((const char *) in->data + i * in->strides[0] * item, in->dtype);
        char *p = (char *) out->data + v * out->strides[0] * oi;
        if (!weights) {
            store_i64(p, out->dtype, load_i64(p, out->dtype) + 1);
        } else if (out->dtype == SIPU_F32) {
            /* float weights accumulate in float, as PyTorch's CPU kernel does */
            store_f32(p, out->dtype, load_f32(p, out->dtype) + load_f32((const char *) weights->data + i * weights->strides[0] * wi, weights->dtype));
        } else {
            store_f64(p, out->dtype, load_f64(p, out->dtype) + load_f64((const char *) weights->data + i * weights->strides[0] * wi, weights->dtype));
        }
    }
    return SIPU_OK;
}

/* ---- isin ---------------------------------------------------------------------------------- */

typedef struct {
    const double *f;
    const int64_t *i;
    int64_t n;
    int32_t dtype;
    bool invert;
} isin_ctx;

static bool contains(const isin_ctx *c, const char *p) {
    int64_t lo = 0, hi = c->n;
    if (c->f) {
        double v = load_f64(p, c->dtype);
        if (v != v) return false;
        while (lo < hi) {
            int64_t mid = lo + (hi - lo) / 2;
            if (c->f[mid] < v) lo = mid + 1;
            else hi = mid;
        }
        return lo < c->n && c->f[lo] == v;
    }
    int64_t v = load_i64(p, c->dtype);
    while (lo < hi) {
        int64_t mid = lo + (hi - lo) / 2;
        if (c->i[mid] < v) lo = mid + 1;
        else hi = mid;
    }
    return lo < c->n && c->i[lo] == v;
}

static void isin_loop(int64_t n, char *const *ptrs, const int64_t *strides, void *ctx) {
    const isin_ctx *c = ctx;
    for (int64_t j = 0; j < n; j++) ptrs[0][j * strides[0]] = contains(c, ptrs[1] + j * strides[1]) != c->invert;
}

static int cmp_f64(const void *a, const void *b) {
    double x = *(const double *) a, y = *(const double *) b;
    return (x > y) - (x < y);
}

static int cmp_i64(const void *a, const void *b) {
    int64_t x = *(const int64_t *) a, y = *(const int64_t *) b;
    return (x > y) - (x < y);
}

SIPU_API sipu_status sipu_isin(const sipu_tensor *out, const sipu_tensor *elements, const sipu_tensor *test, int32_t invert) {
    const char *fn = "sipu_isin";
    sipu_status st;
    if ((st = sipu_check(out, fn, "out")) || (st = sipu_check(elements, fn, "elements")) || (st = sipu_check(test, fn, "test_elements"))
        || (st = sipu_check_same_shape(elements, out, fn, "elements")))
        return st;
    if (out->dtype != SIPU_BOOL || elements->dtype != test->dtype)
        return sipu_fail(SIPU_ERR_INVALID_ARGUMENT, "%s: expects a bool out and elements and test_elements of one dtype", fn);
    const int64_t m = sipu_numel(test);
    const int item = sipu_itemsize(test->dtype);
    const bool fl = sipu_is_float(test->dtype);
    void *sorted = malloc((size_t) (m + 1) * 8);
    if (!sorted) return sipu_fail(SIPU_ERR_OUT_OF_MEMORY, "%s: no memory for %lld test elements", fn, (long long) m);
    int64_t kept = 0;
    walk w;
    walk_at(test, 0, &w);
    for (int64_t i = 0; i < m; i++, walk_next(test, &w)) {
        const char *p = (const char *) test->data + w.off * item;
        if (fl) {
            double v = load_f64(p, test->dtype);
            if (v == v) ((double *) sorted)[kept++] = v; /* NaN matches nothing */
        } else {
            ((int64_t *) sorted)[kept++] = load_i64(p, test->dtype);
        }
    }
    qsort(sorted, (size_t) kept, 8, fl ? cmp_f64 : cmp_i64);
    isin_ctx c = {fl ? sorted : NULL, fl ? NULL : sorted, kept, elements->dtype, invert != 0};
    const sipu_tensor *ops[2] = {out, elements};
    sipu_iter_run(2, ops, isin_loop, &c);
    free(sorted);
    return SIPU_OK;
}

/* ---- exponential sampling ------------------------------------------------------------------ */

/* SplittableRandom's mix64: draw c (0-based) of `new SplittableRandom(seed)` is mix64(seed + (c + 1) * gamma). */
static inline uint64_t mix64(uint64_t z) {
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

SIPU_API double sipu_uniform(uint64_t seed, uint64_t counter) {
    return (double) (mix64(seed + (counter + 1) * 0x9e3779b97f4a7c15ULL) >> 11) * 0x1.0p-53;
}

SIPU_API sipu_status sipu_exponential(const sipu_tensor *self, double lambd, uint64_t seed, uint64_t offset) {
    const char *fn = "sipu_exponential";
    sipu_status st = sipu_check(self, fn, "self");
    if (st) return st;
    if (!sipu_is_float(self->dtype) || !(lambd > 0))
        return sipu_fail(SIPU_ERR_INVALID_ARGUMENT, "%s: expects a floating self and lambd > 0, got %g", fn, lambd);
    const int64_t n = sipu_numel(self);
    const int item = sipu_itemsize(self->dtype);
    const int threads = sipu_threads();
    #pragma omp parallel num_threads(threads) if (n > 65536)
    {
        int64_t nt = 1, t = 0;
        #ifdef _OPENMP
        nt = omp_get_num_threads();
        t = omp_get_thread_num();
        #endif
        int64_t lo = n * t / nt, hi = n * (t + 1) / nt;
        walk w;
        walk_at(self, lo, &w);
        for (int64_t i = lo; i < hi; i++, walk_next(self, &w)) {
            double x = -log1p(-sipu_uniform(seed, offset + (uint64_t) i)) / lambd;
            store_f64((char *) self->data + w.off * item, self->dtype, x);
        }
    }
    return SIPU_OK;
}
