/* Row reductions, softmax and cumsum over [R, N] views (the Java side moves the reduced dims last). */
#include "convert.h"
#include "internal.h"

#include <math.h>
#include <stdlib.h>
#ifdef _OPENMP
#include <omp.h>
#endif

/* An fp32 value rounded to a narrow float dtype and read back. */
static inline float round_to(int32_t dtype, float v) {
    return dtype == SIPU_F16 ? f16_to_f32(f32_to_f16(v)) : bf16_to_f32(f32_to_bf16(v));
}

typedef struct { const char *base; int32_t dtype; int64_t rs, es; int item; } rows;

static rows rows_of(const sipu_tensor *t) {
    rows r = {t->data, t->dtype, t->strides[0], t->strides[1], sipu_itemsize(t->dtype)};
    return r;
}

static inline double at(const rows *r, int64_t i, int64_t j) { return load_f64(r->base + (i * r->rs + j * r->es) * r->item, r->dtype); }
static inline int64_t at_i(const rows *r, int64_t i, int64_t j) { return load_i64(r->base + (i * r->rs + j * r->es) * r->item, r->dtype); }

static sipu_status check_rows(const char *fn, const sipu_tensor *in) {
    sipu_status st = sipu_check(in, fn, "in");
    if (st) return st;
    if (in->ndim != 2) return sipu_fail(SIPU_ERR_INVALID_ARGUMENT, "%s: in must be [rows, n], has %d dimensions", fn, in->ndim);
    return SIPU_OK;
}

/*
 * max / amax / argmax over contiguous fp32 rows (a vocabulary's logits): rows are cut into chunks so
 * that a few long rows still use every thread; each chunk's first maximum is found by the vector
 * loop, then the chunks of a row are merged in order (an earlier chunk wins ties, a NaN wins outright).
 */
static sipu_status max_rows_f32(int32_t op, const sipu_tensor *out, const sipu_tensor *idx, const sipu_tensor *in, int oi) {
    enum { CHUNK = 16384 };
    int64_t R = in->sizes[0], N = in->sizes[1], chunks = (N + CHUNK - 1) / CHUNK, tasks = R * chunks;
    if (tasks == 0) return SIPU_OK;
    float *val = malloc((size_t) tasks * sizeof(float));
    int64_t *pos = malloc((size_t) tasks * sizeof(int64_t));
    if (!val || !pos) {
        free(val);
        free(pos);
        return sipu_fail(SIPU_ERR_OUT_OF_MEMORY, "sipu_reduce_rows: no memory for %lld partial maxima", (long long) tasks);
    }
    const float *base = in->data;
    const sipu_vtable *vt = sipu_vt();
    #pragma omp parallel for num_threads(sipu_threads()) schedule(static) if (R * N > 65536)
    for (int64_t t = 0; t < tasks; t++) {
        int64_t i = t / chunks, j0 = (t % chunks) * CHUNK, n = N - j0 < CHUNK ? N - j0 : CHUNK;
        pos[t] = j0 + vt->argmax_f32(n, base + i * in->strides[0] + j0, &val[t]);
    }
    for (int64_t i = 0; i < R; i++) {
        int64_t b = i * chunks;
        for (int64_t c = i * chunks + 1; c < (i + 1) * chunks; c++)
            if (!isnan(val[b]) && (isnan(val[c]) || val[c] > val[b])) b = c;
        char *o = (char *) out->data + i * out->strides[0] * oi;
        if (op == SIPU_REDUCE_ARGMAX) store_i64(o, out->dtype, pos[b]);
        else store_f64(o, out->dtype, val[b]);
        if (op == SIPU_REDUCE_MAX) ((int64_t *) idx->data)[i * idx->strides[0]] = pos[b];
    }
    free(val);
    free(pos);
    return SIPU_OK;
}

SIPU_API sipu_status sipu_reduce_rows(int32_t op, const sipu_tensor *out, const sipu_tensor *idx, const sipu_tensor *in) {
    const char *fn = "sipu_reduce_rows";
    sipu_status st;
    if ((st = check_rows(fn, in)) || (st = sipu_check(out, fn, "out"))) return st;
    if (op < SIPU_REDUCE_SUM || op > SIPU_REDUCE_ANY) return sipu_fail(SIPU_ERR_INVALID_ARGUMENT, "%s: unknown op %d", fn, op);
    int64_t R = in->sizes[0], N = in->sizes[1];
    if (out->ndim != 1 || out->sizes[0] != R) return sipu_fail(SIPU_ERR_INVALID_ARGUMENT, "%s: out must be [%lld]", fn, (long long) R);
    if (op == SIPU_REDUCE_MAX && (!idx || (st = sipu_check(idx, fn, "indices")) || idx->ndim != 1 || idx->sizes[0] != R || idx->dtype != SIPU_I64))
        return st ? st : sipu_fail(SIPU_ERR_INVALID_ARGUMENT, "%s: MAX needs int64 indices [%lld]", fn, (long long) R);
    if ((op == SIPU_REDUCE_AMAX || op == SIPU_REDUCE_MAX || op == SIPU_REDUCE_ARGMAX) && N == 0 && R > 0)
        return sipu_fail(SIPU_ERR_INVALID_ARGUMENT, "%s: cannot take the maximum of an empty row", fn);
    rows x = rows_of(in);
    int oi = sipu_itemsize(out->dtype);
    bool floating = sipu_is_float(in->dtype);
    if ((op == SIPU_REDUCE_AMAX || op == SIPU_REDUCE_MAX || op == SIPU_REDUCE_ARGMAX) && in->dtype == SIPU_F32 && (in->strides[1] == 1 || N == 1))
        return max_rows_f32(op, out, idx, in, oi);
    #pragma omp parallel for num_threads(sipu_threads()) if (R * N > 65536)
    for (int64_t i = 0; i < R; i++) {
        char *o = (char *) out->data + i * out->strides[0] * oi;
        switch (op) {
        case SIPU_REDUCE_SUM:
        case SIPU_REDUCE_MEAN:
            if (floating || sipu_is_float(out->dtype)) {
                /* fp32 accumulation for fp32 and the narrow floats, as PyTorch's CPU sum does */
                bool wide = in->dtype == SIPU_F64 || out->dtype == SIPU_F64;
                double sd = 0;
                float sf = 0;
                for (int64_t j = 0; j < N; j++) {
                    if (wide) sd += at(&x, i, j);
                    else sf += (float) at(&x, i, j);
                }
                double sum = wide ? sd : sf;
                store_f64(o, out->dtype, op == SIPU_REDUCE_MEAN ? (wide ? sum / (double) N : (double) ((float) sum / (float) N)) : sum);
            } else {
                uint64_t s = 0;
                for (int64_t j = 0; j < N; j++) s += (uint64_t) at_i(&x, i, j);
                store_i64(o, out->dtype, (int64_t) s);
            }
            break;
        case SIPU_REDUCE_ANY: {
            bool any = false;
            for (int64_t j = 0; j < N && !any; j++) any = floating ? at(&x, i, j) != 0 : at_i(&x, i, j) != 0;
            store_i64(o, out->dtype, any);
            break;
        }
        default: {
            /* max / amax / argmax: the first maximum, and the first NaN wins outright */
            int64_t best = 0;
            if (floating) {
                double bv = at(&x, i, 0);
                for (int64_t j = 1; j < N && !isnan(bv); j++) {
                    double v = at(&x, i, j);
                    if (isnan(v) || v > bv) { bv = v; best = j; }
                }
                if (op != SIPU_REDUCE_ARGMAX) store_f64(o, out->dtype, bv);
            } else {
                int64_t bv = at_i(&x, i, 0);
                for (int64_t j = 1; j < N; j++) {
                    int64_t v = at_i(&x, i, j);
                    if (v > bv) { bv = v; best = j; }
                }
                if (op != SIPU_REDUCE_ARGMAX) store_i64(o, out->dtype, bv);
            }
            if (op == SIPU_REDUCE_ARGMAX) store_i64(o, out->dtype, best);
            if (op == SIPU_REDUCE_MAX) ((int64_t *) idx->data)[i * idx->strides[0]] = best;
        }
        }
    }
    return SIPU_OK;
}

/*
 * Softmax of fp32-computed rows by the running ISA's row kernel (vt->softmax_f32): contiguous f32
 * rows are read in place with the output row as the exp scratch; other dtypes and strides are
 * widened into per-thread scratch first and stored from it.
 */
static sipu_status softmax_narrow(const sipu_tensor *out, const rows *x, int64_t R, int64_t N, int32_t log_softmax, int32_t narrow,
                                  int oi) {
    const int threads = sipu_threads();
    const int64_t per = (N + 16) / 16 * 16;
    const bool direct = x->dtype == SIPU_F32 && x->es == 1 && out->dtype == SIPU_F32 && out->strides[1] == 1;
    float *scratch = direct ? NULL : malloc((size_t) threads * (size_t) (2 * per) * sizeof(float));
    if (!direct && !scratch) return sipu_fail(SIPU_ERR_OUT_OF_MEMORY, "sipu_softmax_rows: no memory for rows of %lld", (long long) N);
    const sipu_vtable *vt = sipu_vt();
    #pragma omp parallel num_threads(threads) if (R * N > 65536 && R > 1)
    {
        #ifdef _OPENMP
        float *v = direct ? NULL : scratch + (size_t) omp_get_thread_num() * (size_t) (2 * per);
        #else
        float *v = scratch;
        #endif
        float *e = direct ? NULL : v + per;
        #pragma omp for schedule(static)
        for (int64_t i = 0; i < R; i++) {
            const char *row = x->base + i * x->rs * x->item;
            char *o = (char *) out->data + i * out->strides[0] * oi;
            if (direct) {
                vt->softmax_f32(N, (const float *) row, (float *) o, log_softmax, narrow);
                continue;
            }
            sipu_row_to_f32_strided(row, x->dtype, x->es, N, v);
            vt->softmax_f32(N, v, e, log_softmax, narrow);
            for (int64_t j = 0; j < N; j++) store_f32(o + j * out->strides[1] * oi, out->dtype, e[j]);
        }
    }
    free(scratch);
    return SIPU_OK;
}

SIPU_API sipu_status sipu_softmax_rows(const sipu_tensor *out, const sipu_tensor *in, int32_t log_softmax) {
    const char *fn = "sipu_softmax_rows";
    sipu_status st;
    if ((st = check_rows(fn, in)) || (st = sipu_check(out, fn, "out")) || (st = sipu_check_same_shape(out, in, fn, "out"))) return st;
    if (!sipu_is_float(in->dtype) || !sipu_is_float(out->dtype)) return sipu_fail(SIPU_ERR_UNSUPPORTED_DTYPE, "%s: floating tensors only", fn);
    int64_t R = in->sizes[0], N = in->sizes[1];
    rows x = rows_of(in);
    int oi = sipu_itemsize(out->dtype);
    bool wide = in->dtype == SIPU_F64;
    /* PyTorch keeps a narrow log_softmax's row sum and its log in the output dtype (both rounded). */
    int32_t narrow = (log_softmax && (out->dtype == SIPU_F16 || out->dtype == SIPU_BF16)) ? out->dtype : 0;
    if (!wide && out->dtype != SIPU_F64) return softmax_narrow(out, &x, R, N, log_softmax, narrow, oi);
    #pragma omp parallel for num_threads(sipu_threads()) if (R * N > 65536)
    for (int64_t i = 0; i < R; i++) {
        double mx = -INFINITY;
        for (int64_t j = 0; j < N; j++) { double v = at(&x, i, j); if (v > mx || isnan(v)) mx = v; }
        double z = 0;
        float zf = 0;
        for (int64_t j = 0; j < N; j++) {
            if (wide) z += exp(at(&x, i, j) - mx);
            else zf += expf((float) at(&x, i, j) - (float) mx);
        }
        if (!wide) z = zf;
        double lz = wide ? log(z) : (double) logf((float) z);
        if (narrow) {
            z = round_to(narrow, (float) z);
            lz = round_to(narrow, logf((float) z));
        }
        for (int64_t j = 0; j < N; j++) {
            double v = at(&x, i, j) - mx;
            double r = log_softmax ? v - lz : exp(v) / z;
            if (!wide) r = log_softmax ? (float) v - (float) lz : expf((float) v) / (float) z;
            store_f64((char *) out->data + (i * out->strides[0] + j * out->strides[1]) * oi, out->dtype, r);
        }
    }
    return SIPU_OK;
}

SIPU_API sipu_status sipu_cumsum_rows(const sipu_tensor *out, const sipu_tensor *in) {
    const char *fn = "sipu_cumsum_rows";
    sipu_status st;
    if ((st = check_rows(fn, in)) || (st = sipu_check(out, fn, "out")) || (st = sipu_check_same_shape(out, in, fn, "out"))) return st;
    int64_t R = in->sizes[0], N = in->sizes[1];
    rows x = rows_of(in);
    int oi = sipu_itemsize(out->dtype);
    bool floating = sipu_is_float(out->dtype);
    #pragma omp parallel for num_threads(sipu_threads()) if (R * N > 65536)
    for (int64_t i = 0; i < R; i++) {
        double sd = 0;
        float sf = 0;
        uint64_t si = 0;
        for (int64_t j = 0; j < N; j++) {
            char *o = (char *) out->data + (i * out->strides[0] + j * out->strides[1]) * oi;
            if (out->dtype == SIPU_F64) { sd += at(&x, i, j); store_f64(o, out->dtype, sd); }
            else if (floating) { sf += (float) at(&x, i, j); store_f32(o, out->dtype, sf); }
            else { si += (uint64_t) at_i(&x, i, j); store_i64(o, out->dtype, (int64_t) si); }
        }
    }
    return SIPU_OK;
}
