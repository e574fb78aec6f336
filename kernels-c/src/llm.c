/* vLLM's fused row ops with the rounding points of SEMANTICS.md §1 and §3; rows run in parallel. */
#include "convert.h"
#include "internal.h"

#include <math.h>
#include <stdlib.h>

static inline float round_to(int32_t t, float v) {
    switch (t) {
    case SIPU_BF16: return bf16_to_f32(f32_to_bf16(v));
    case SIPU_F16: return f16_to_f32(f32_to_f16(v));
    default: return v;
    }
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
    #pragma omp parallel num_threads(sipu_threads()) if (rows * H > 65536)
    {
        float *xf = malloc((size_t) H * sizeof(float)), *wf = malloc((size_t) H * sizeof(float));
        if (xf && wf) {
            for (int64_t i = 0; i < H; i++) wf[i] = load_f32((const char *) w->data + i * item, t);
            #pragma omp for schedule(static)
            for (int64_t r = 0; r < rows; r++) {
                const char *xr = (const char *) x->data + row_offset(x, r) * item;
                char *orow = (char *) out->data + row_offset(out, r) * item;
                for (int64_t i = 0; i < H; i++) xf[i] = load_f32(xr + i * item, t);
                float inv = 1.0f / sqrtf(sipu_vt()->sum_squares_f32(H, xf) / (float) H + eps);
                for (int64_t i = 0; i < H; i++) store_f32(orow + i * item, t, round_to(t, xf[i] * inv) * wf[i]);
            }
        }
        free(xf);
        free(wf);
    }
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
    #pragma omp parallel for num_threads(sipu_threads()) schedule(static) if (rows * d > 65536)
    for (int64_t r = 0; r < rows; r++) {
        const char *xr = (const char *) x->data + row_offset(x, r) * item;
        char *orow = (char *) out->data + row_offset(out, r) * item;
        for (int64_t j = 0; j < d; j++) {
            float a = load_f32(xr + j * item, t), b = load_f32(xr + (d + j) * item, t);
            store_f32(orow + j * item, t, round_to(t, a / (1.0f + expf(-a))) * b);
        }
    }
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
    #pragma omp parallel num_threads(sipu_threads()) if (rows * H > 65536)
    {
        float *z = malloc((size_t) H * sizeof(float));
        if (z) {
            #pragma omp for schedule(static)
            for (int64_t r = 0; r < rows; r++) {
                char *xr = (char *) x->data + row_offset(x, r) * item, *rr = (char *) res->data + row_offset(res, r) * item;
                /* The residual stores the rounded sum; the norm uses the fp32 sum (the reference's rounding). */
                for (int64_t i = 0; i < H; i++) {
                    z[i] = load_f32(xr + i * item, t) + load_f32(rr + i * item, t);
                    store_f32(rr + i * item, t, z[i]);
                }
                float inv = 1.0f / sqrtf(sipu_vt()->sum_squares_f32(H, z) / (float) H + eps);
                for (int64_t i = 0; i < H; i++)
                    store_f32(xr + i * item, t, round_to(t, z[i] * inv) * load_f32((const char *) w->data + i * item, t));
            }
        }
        free(z);
    }
    return SIPU_OK;
}
