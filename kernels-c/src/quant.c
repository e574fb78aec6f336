/* Quantization kernels: vLLM's per-token fp8/int8 and DeepSeek's block act_quant, weight_dequant, fp8_gemm. */
#include "convert.h"
#include "gemm_kernels.h"
#include "internal.h"

#include <math.h>
#include <stdlib.h>

static bool row_major_2d(const sipu_tensor *t) {
    return t->ndim == 2 && (t->sizes[1] <= 1 || t->strides[1] == 1);
}

SIPU_API sipu_status sipu_per_token_fp8_quant(const sipu_tensor *out, const sipu_tensor *x, const sipu_tensor *scale, const sipu_tensor *ub) {
    sipu_status st;
    const char *fn = "sipu_per_token_fp8_quant";
    if ((st = sipu_check(out, fn, "result")) || (st = sipu_check(x, fn, "input")) || (st = sipu_check(scale, fn, "scale"))
        || (st = sipu_check_same_shape(out, x, fn, "result")) || (ub && (st = sipu_check(ub, fn, "scale_ub"))))
        return st;
    if (!row_major_2d(x) || !row_major_2d(out) || out->dtype != SIPU_F8E4M3FN || scale->dtype != SIPU_F32 || sipu_numel(scale) != x->sizes[0])
        return sipu_fail(SIPU_ERR_INVALID_ARGUMENT, "%s: expects input [T, H] (rows contiguous), float8_e4m3fn result [T, H] and float32 scale of T elements", fn);
    int64_t T = x->sizes[0], H = x->sizes[1];
    int item = sipu_itemsize(x->dtype);
    float bound = ub ? load_f32(ub->data, ub->dtype) : INFINITY;
    #pragma omp parallel for num_threads(sipu_threads()) if (T * H > 65536)
    for (int64_t t = 0; t < T; t++) {
        const char *xr = (const char *) x->data + t * x->strides[0] * item;
        float amax = 0;
        for (int64_t i = 0; i < H; i++) amax = fmaxf(amax, fabsf(load_f32(xr + i * item, x->dtype)));
        amax = fminf(amax, bound);
        float s = fmaxf(amax / 448.0f, 1.0f / (448.0f * 512.0f));
        ((float *) scale->data)[t] = s;
        uint8_t *o = (uint8_t *) out->data + t * out->strides[0];
        for (int64_t i = 0; i < H; i++) o[i] = f32_to_e4m3_sat(load_f32(xr + i * item, x->dtype) / s);
    }
    return SIPU_OK;
}

SIPU_API sipu_status sipu_per_token_int8_quant(const sipu_tensor *out, const sipu_tensor *x, const sipu_tensor *scale) {
    sipu_status st;
    const char *fn = "sipu_per_token_int8_quant";
    if ((st = sipu_check(out, fn, "result")) || (st = sipu_check(x, fn, "input")) || (st = sipu_check(scale, fn, "scale"))
        || (st = sipu_check_same_shape(out, x, fn, "result")))
        return st;
    if (!row_major_2d(x) || !row_major_2d(out) || out->dtype != SIPU_I8 || scale->dtype != SIPU_F32 || sipu_numel(scale) != x->sizes[0])
        return sipu_fail(SIPU_ERR_INVALID_ARGUMENT, "%s: expects input [T, H] (rows contiguous), int8 result [T, H] and float32 scale of T elements", fn);
    int64_t T = x->sizes[0], H = x->sizes[1];
    int item = sipu_itemsize(x->dtype);
    #pragma omp parallel for num_threads(sipu_threads()) if (T * H > 65536)
    for (int64_t t = 0; t < T; t++) {
        const char *xr = (const char *) x->data + t * x->strides[0] * item;
        float amax = 0;
        for (int64_t i = 0; i < H; i++) amax = fmaxf(amax, fabsf(load_f32(xr + i * item, x->dtype)));
        float sc = amax / 127.0f;
        ((float *) scale->data)[t] = sc;
        int8_t *o = (int8_t *) out->data + t * out->strides[0];
        for (int64_t i = 0; i < H; i++) {
            /* x / scale (not x * (127 / amax)): the reference's rounding, ties to even. */
            float q = sc > 0 ? nearbyintf(load_f32(xr + i * item, x->dtype) / sc) : 0.0f;
            o[i] = (int8_t) (q > 127.0f ? 127 : q < -128.0f ? -128 : (int) q);
        }
    }
    return SIPU_OK;
}

SIPU_API sipu_status sipu_act_quant(const sipu_tensor *y, const sipu_tensor *s, const sipu_tensor *x, int64_t block, int32_t ue8m0) {
    sipu_status st;
    const char *fn = "sipu_act_quant";
    if ((st = sipu_check(y, fn, "y")) || (st = sipu_check(s, fn, "s")) || (st = sipu_check(x, fn, "x"))) return st;
    if (block <= 0 || !row_major_2d(x) || !row_major_2d(y) || y->sizes[0] != x->sizes[0] || y->sizes[1] != x->sizes[1]
        || x->sizes[1] % block || y->dtype != SIPU_F8E4M3FN || s->dtype != SIPU_F32 || !row_major_2d(s)
        || s->sizes[0] != x->sizes[0] || s->sizes[1] != x->sizes[1] / block)
        return sipu_fail(SIPU_ERR_INVALID_ARGUMENT, "%s: expects x [R, K] with K a multiple of block_size %lld, y e4m3 [R, K], s float32 [R, K/block]", fn, (long long) block);
    int64_t R = x->sizes[0], K = x->sizes[1], nb = K / block;
    int item = sipu_itemsize(x->dtype);
    #pragma omp parallel for num_threads(sipu_threads()) if (R * K > 65536)
    for (int64_t r = 0; r < R; r++) {
        const char *xr = (const char *) x->data + r * x->strides[0] * item;
        uint8_t *yr = (uint8_t *) y->data + r * y->strides[0];
        for (int64_t b = 0; b < nb; b++) {
            float amax = 0;
            for (int64_t i = b * block; i < (b + 1) * block; i++) amax = fmaxf(amax, fabsf(load_f32(xr + i * item, x->dtype)));
            float sc = fmaxf(amax, 1e-4f) / 448.0f;
            if (ue8m0) sc = exp2f(ceilf(log2f(sc)));
            ((float *) s->data)[r * s->strides[0] + b] = sc;
            for (int64_t i = b * block; i < (b + 1) * block; i++) yr[i] = f32_to_e4m3_sat(load_f32(xr + i * item, x->dtype) / sc);
        }
    }
    return SIPU_OK;
}

SIPU_API sipu_status sipu_weight_dequant(const sipu_tensor *y, const sipu_tensor *x, const sipu_tensor *s, int64_t block) {
    sipu_status st;
    const char *fn = "sipu_weight_dequant";
    if ((st = sipu_check(y, fn, "y")) || (st = sipu_check(x, fn, "x")) || (st = sipu_check(s, fn, "s"))
        || (st = sipu_check_same_shape(y, x, fn, "y")))
        return st;
    if (block <= 0 || x->ndim != 2 || x->dtype != SIPU_F8E4M3FN || s->ndim != 2 || s->dtype != SIPU_F32
        || s->sizes[0] != (x->sizes[0] + block - 1) / block || s->sizes[1] != (x->sizes[1] + block - 1) / block)
        return sipu_fail(SIPU_ERR_INVALID_ARGUMENT, "%s: expects e4m3 x [M, N] and float32 s [ceil(M/%lld), ceil(N/%lld)]", fn, (long long) block, (long long) block);
    int64_t M = x->sizes[0], N = x->sizes[1];
    int oi = sipu_itemsize(y->dtype);
    #pragma omp parallel for num_threads(sipu_threads()) if (M * N > 65536)
    for (int64_t i = 0; i < M; i++)
        for (int64_t j = 0; j < N; j++) {
            float sc = ((const float *) s->data)[(i / block) * s->strides[0] + (j / block) * s->strides[1]];
            float v = e4m3_to_f32(((const uint8_t *) x->data)[i * x->strides[0] + j * x->strides[1]]) * sc;
            store_f32((char *) y->data + (i * y->strides[0] + j * y->strides[1]) * oi, y->dtype, v);
        }
    return SIPU_OK;
}

SIPU_API sipu_status sipu_fp8_gemm(const sipu_tensor *c, const sipu_tensor *a, const sipu_tensor *as, const sipu_tensor *b, const sipu_tensor *bs) {
    sipu_status st;
    const char *fn = "sipu_fp8_gemm";
    if ((st = sipu_check(c, fn, "c")) || (st = sipu_check(a, fn, "a")) || (st = sipu_check(as, fn, "a_s")) || (st = sipu_check(b, fn, "b"))
        || (st = sipu_check(bs, fn, "b_s")))
        return st;
    if (!row_major_2d(a) || !row_major_2d(b) || !row_major_2d(as) || !row_major_2d(bs) || c->ndim != 2
        || a->dtype != SIPU_F8E4M3FN || b->dtype != SIPU_F8E4M3FN || as->dtype != SIPU_F32 || bs->dtype != SIPU_F32)
        return sipu_fail(SIPU_ERR_INVALID_ARGUMENT, "%s: expects e4m3 a [M, K], b [N, K] and float32 scales, rows contiguous", fn);
    int64_t M = a->sizes[0], K = a->sizes[1], N = b->sizes[0], KB = (K + 127) / 128;
    if (b->sizes[1] != K || as->sizes[0] != M || as->sizes[1] != KB || bs->sizes[0] != (N + 127) / 128 || bs->sizes[1] != KB
        || c->sizes[0] != M || c->sizes[1] != N)
        return sipu_fail(SIPU_ERR_INVALID_ARGUMENT, "%s: shapes do not match a [M, K] = [%lld, %lld], b [N, K] with N = %lld and 128-wide scale blocks",
                         fn, (long long) M, (long long) K, (long long) N);
    /* a [M, K] times b^T: b is read as K x N with K contiguous (stride 1) and N at its row stride */
    bool direct = c->dtype == SIPU_F32 && (N == 1 || c->strides[1] == 1) && (M == 1 || c->strides[0] >= N);
    float *acc = direct ? (float *) c->data : malloc((size_t) (M * N + 1) * sizeof(float));
    if (!acc) return sipu_fail(SIPU_ERR_OUT_OF_MEMORY, "%s: no memory for a [%lld, %lld] result", fn, (long long) M, (long long) N);
    sipu_gemm_job job = {M, N, K, (const char *) a->data, a->strides[0], 1, SIPU_F8E4M3FN, (const char *) b->data, 1, b->strides[0], SIPU_F8E4M3FN,
                         acc, direct ? c->strides[0] : N, (const float *) as->data, (const float *) bs->data, as->strides[0], bs->strides[0]};
    if (K > 0 && (N == 1 || M == 1)) {
        /* strides of size-1 dimensions may be anything; the kernels read them */
        if (M == 1) job.sa0 = K;
        if (N == 1) job.sb1 = K;
    }
    st = sipu_gemm_run(&job, fn);
    if (!st && !direct) {
        int oi = sipu_itemsize(c->dtype);
        bool rows = (N == 1 || c->strides[1] == 1) && (c->dtype == SIPU_BF16 || c->dtype == SIPU_F16 || c->dtype == SIPU_F32);
        #pragma omp parallel for num_threads(sipu_threads()) if (M * N > 65536)
        for (int64_t m = 0; m < M; m++) {
            /* the same rounding as store_f32, a vector loop per row */
            if (rows) sipu_vt()->row_from_f32(c->dtype, N, acc + m * N, (char *) c->data + m * c->strides[0] * oi);
            else
                for (int64_t n = 0; n < N; n++) store_f32((char *) c->data + (m * c->strides[0] + n * c->strides[1]) * oi, c->dtype, acc[m * N + n]);
        }
    }
    if (!direct) free(acc);
    return st;
}
