/* vLLM's fused row ops with the rounding points of SEMANTICS.md §1 and §3; rows run in parallel. */
#include "convert.h"
#include "internal.h"

#include <math.h>
#include <omp.h>
#include <stdlib.h>

/* `shared` floats, then `per_thread` floats for each thread the row loop may run on. */
static float *alloc_rows(bool parallel, int64_t per_thread, int64_t shared) {
    int64_t n = shared + (parallel ? sipu_threads() : 1) * per_thread;
    return malloc((size_t) (n > 0 ? n : 1) * sizeof(float));
}

static bool norm_dtype(int32_t t) { return t == SIPU_F32 || t == SIPU_F16 || t == SIPU_BF16; }

/* Element offset of row r of a [..., H] tensor whose last dimension is contiguous. */
static int64_t row_offset(const sipu_tensor *t, int64_t r) {
    int64_t off = 0;
    for (int d = t->ndim - 2; d >= 0; d--) {
        off += (r % t->sizes[d]) * t->strides[d];
        r /= t->sizes[d];
    }
    return off;
}

/* out = round_t(x * rsqrt(mean(x^2) + eps)) * w for one row x of dtype t (of fp32 when wide_in), stored in dtype t. */
static void norm_row(const sipu_vtable *vt, int32_t t, int wide_in, int64_t H, const void *x, const float *wf, float eps, void *out) {
    float inv = 1.0f / sqrtf(vt->sum_squares(t, wide_in, H, x) / (float) H + eps);
    vt->scale_mul(t, wide_in, H, x, inv, wf, out);
}

SIPU_API sipu_status sipu_rms_norm(const sipu_tensor *out, const sipu_tensor *x, const sipu_tensor *w, double epsilon) {
    sipu_status st;
    if ((st = sipu_check(out, "sipu_rms_norm", "out")) || (st = sipu_check(x, "sipu_rms_norm", "input"))
        || (st = sipu_check(w, "sipu_rms_norm", "weight")) || (st = sipu_check_same_shape(out, x, "sipu_rms_norm", "out")))
        return st;
    if (x->ndim < 1 || !norm_dtype(x->dtype) || out->dtype != x->dtype || w->dtype != x->dtype)
        return sipu_fail(SIPU_ERR_UNSUPPORTED_DTYPE, "sipu_rms_norm: input, weight and out must share a float32/float16/bfloat16 dtype");
    int64_t H = x->sizes[x->ndim - 1];
    if (w->ndim != 1 || w->sizes[0] != H)
        return sipu_fail(SIPU_ERR_INVALID_ARGUMENT, "sipu_rms_norm: weight must be [%lld]", (long long) H);
    if (H > 1 && (x->strides[x->ndim - 1] != 1 || out->strides[out->ndim - 1] != 1 || w->strides[0] != 1))
        return sipu_fail(SIPU_ERR_INVALID_ARGUMENT, "sipu_rms_norm: last dimensions must be contiguous");
    if (H == 0) return SIPU_OK;
    int64_t rows = sipu_numel(x) / H;
    int32_t t = x->dtype;
    int item = sipu_itemsize(t);
    const float eps = (float) epsilon;
    const sipu_vtable *vt = sipu_vt();
    /* the weight in fp32; the rows are read and written in place */
    float *wf = malloc((size_t) H * sizeof(float));
    if (!wf) return sipu_fail(SIPU_ERR_OUT_OF_MEMORY, "sipu_rms_norm: no memory for %lld-wide rows", (long long) H);
    vt->row_to_f32(t, H, w->data, wf);
    #pragma omp parallel for num_threads(sipu_threads()) schedule(static) if (rows * H > 65536)
    for (int64_t r = 0; r < rows; r++)
        norm_row(vt, t, 0, H, (const char *) x->data + row_offset(x, r) * item, wf, eps, (char *) out->data + row_offset(out, r) * item);
    free(wf);
    return SIPU_OK;
}

SIPU_API sipu_status sipu_silu_and_mul(const sipu_tensor *out, const sipu_tensor *x) {
    sipu_status st;
    if ((st = sipu_check(out, "sipu_silu_and_mul", "out")) || (st = sipu_check(x, "sipu_silu_and_mul", "input"))) return st;
    if (x->ndim < 1 || out->ndim != x->ndim || !norm_dtype(x->dtype) || out->dtype != x->dtype)
        return sipu_fail(SIPU_ERR_UNSUPPORTED_DTYPE, "sipu_silu_and_mul: input and out must share a float32/float16/bfloat16 dtype and rank");
    int64_t two_d = x->sizes[x->ndim - 1], d = two_d / 2;
    if (two_d % 2 || out->sizes[out->ndim - 1] != d)
        return sipu_fail(SIPU_ERR_INVALID_ARGUMENT, "sipu_silu_and_mul: input's last dimension %lld must be twice out's", (long long) two_d);
    for (int i = 0; i < x->ndim - 1; i++)
        if (x->sizes[i] != out->sizes[i]) return sipu_fail(SIPU_ERR_INVALID_ARGUMENT, "sipu_silu_and_mul: leading dimensions differ");
    if (d > 0 && (x->strides[x->ndim - 1] != 1 || out->strides[out->ndim - 1] != 1))
        return sipu_fail(SIPU_ERR_INVALID_ARGUMENT, "sipu_silu_and_mul: last dimensions must be contiguous");
    if (d == 0) return SIPU_OK;
    int64_t rows = sipu_numel(out) / d;
    int32_t t = x->dtype;
    int item = sipu_itemsize(t);
    const sipu_vtable *vt = sipu_vt();
    #pragma omp parallel for num_threads(sipu_threads()) schedule(static) if (rows * d > 65536)
    for (int64_t r = 0; r < rows; r++)
        vt->silu_mul(t, d, (const char *) x->data + row_offset(x, r) * item, (char *) out->data + row_offset(out, r) * item);
    return SIPU_OK;
}

SIPU_API sipu_status sipu_fused_add_rms_norm(const sipu_tensor *x, const sipu_tensor *res, const sipu_tensor *w, double epsilon) {
    sipu_status st;
    if ((st = sipu_check(x, "sipu_fused_add_rms_norm", "input")) || (st = sipu_check(res, "sipu_fused_add_rms_norm", "residual"))
        || (st = sipu_check(w, "sipu_fused_add_rms_norm", "weight")) || (st = sipu_check_same_shape(res, x, "sipu_fused_add_rms_norm", "residual")))
        return st;
    if (x->ndim < 1 || !norm_dtype(x->dtype) || res->dtype != x->dtype || w->dtype != x->dtype)
        return sipu_fail(SIPU_ERR_UNSUPPORTED_DTYPE, "sipu_fused_add_rms_norm: input, residual and weight must share a float32/float16/bfloat16 dtype");
    int64_t H = x->sizes[x->ndim - 1];
    if (w->ndim != 1 || w->sizes[0] != H) return sipu_fail(SIPU_ERR_INVALID_ARGUMENT, "sipu_fused_add_rms_norm: weight must be [%lld]", (long long) H);
    if (H > 1 && (x->strides[x->ndim - 1] != 1 || res->strides[res->ndim - 1] != 1 || w->strides[0] != 1))
        return sipu_fail(SIPU_ERR_INVALID_ARGUMENT, "sipu_fused_add_rms_norm: last dimensions must be contiguous");
    if (H == 0) return SIPU_OK;
    int64_t rows = sipu_numel(x) / H;
    int32_t t = x->dtype;
    int item = sipu_itemsize(t);
    const float eps = (float) epsilon;
    const sipu_vtable *vt = sipu_vt();
    bool par = rows * H > 65536;
    /* per thread: input and residual rows in fp32 and their sum; then the weight */
    float *scratch = alloc_rows(par, 3 * H, H), *wf = scratch;
    if (!scratch) return sipu_fail(SIPU_ERR_OUT_OF_MEMORY, "sipu_fused_add_rms_norm: no memory for %lld-wide rows", (long long) H);
    vt->row_to_f32(t, H, w->data, wf);
    #pragma omp parallel num_threads(sipu_threads()) if (par)
    {
        float *xf = scratch + H + (size_t) omp_get_thread_num() * 3 * (size_t) H, *rf = xf + H, *z = rf + H;
        #pragma omp for schedule(static)
        for (int64_t r = 0; r < rows; r++) {
            char *xr = (char *) x->data + row_offset(x, r) * item, *rr = (char *) res->data + row_offset(res, r) * item;
            const float *xs = xf, *rs = rf;
            if (t == SIPU_F32) {
                xs = (const float *) xr;
                rs = (const float *) rr;
            } else {
                vt->row_to_f32(t, H, xr, xf);
                vt->row_to_f32(t, H, rr, rf);
            }
            /* The residual stores the rounded sum; the norm uses the fp32 sum (the reference's rounding). */
            vt->add_f32(H, xs, rs, z);
            vt->row_from_f32(t, H, z, rr);
            norm_row(vt, t, 1, H, z, wf, eps, xr);
        }
    }
    free(scratch);
    return SIPU_OK;
}
