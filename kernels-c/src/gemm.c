/*
 * sipu_matmul: out[b] = a[b] @ b[b] (+ bias) for 2-D or batched 3-D operands of any strides.
 * Floating types go through the packed kernels of gemm_kernels.c (fp32 FMA, or bf16 pair dots
 * for bf16 inputs where the CPU has them), accumulate in fp32 and round once on store; float64
 * accumulates in double and integers in int64.
 */
#include "convert.h"
#include "gemm_kernels.h"
#include "internal.h"

#include <stdlib.h>
#ifdef _OPENMP
#include <omp.h>
#endif

typedef struct {
    int64_t m, n, k;
    const char *a, *b;
    char *o;
    const char *bias;
    int64_t sa0, sa1, sb0, sb1, so0, so1, sbias; /* element strides */
    int32_t ta, tb, to, tbias;
} mat;

static sipu_status gemm_float(const mat *x) {
    const int64_t M = x->m, N = x->n;
    const int io = sipu_itemsize(x->to);
    /* fp32 out with unit column stride takes the product directly; anything else goes through fp32 and rounds once */
    bool direct = x->to == SIPU_F32 && (x->so1 == 1 || N == 1) && (x->so0 >= N || M == 1);
    float *c = direct ? (float *) x->o : malloc((size_t) (M * N + 1) * sizeof(float));
    if (!c)
        return sipu_fail(SIPU_ERR_OUT_OF_MEMORY, "sipu_matmul: no memory for a [%lld, %lld] result", (long long) M, (long long) N);
    sipu_gemm_job job = {M, N, x->k, x->a, x->sa0, x->sa1, x->ta, x->b, x->sb0, x->sb1, x->tb,
                         c, direct ? x->so0 : N, NULL, NULL, 0, 0};
    sipu_status st = sipu_gemm_run(&job, "sipu_matmul");
    if (!st && (!direct || x->bias)) {
        bool rows = !x->bias && (N == 1 || x->so1 == 1) && (x->to == SIPU_BF16 || x->to == SIPU_F16 || x->to == SIPU_F32);
        #pragma omp parallel for num_threads(sipu_threads()) if (M * N > 65536)
        for (int64_t i = 0; i < M; i++) {
            /* the same rounding as store_f32, a vector loop per row */
            if (rows) {
                sipu_vt()->row_from_f32(x->to, N, c + i * job.ldc, x->o + i * x->so0 * io);
                continue;
            }
            for (int64_t j = 0; j < N; j++) {
                float v = c[i * job.ldc + j];
                if (x->bias) v += load_f32(x->bias + j * x->sbias * sipu_itemsize(x->tbias), x->tbias);
                store_f32(x->o + (i * x->so0 + j * x->so1) * io, x->to, v);
            }
        }
    }
    if (!direct) free(c);
    return st;
}

/*
 * Decode-sized products (M <= 16): B is streamed from memory once, without packing. Row-major B: each
 * row of B updates the M accumulator rows of a column block (axpy); transposed B (the t() of a linear's
 * weight): each output is a dot product of a row of A with a contiguous weight row. Columns are split
 * across threads.
 */
#define GEMV_MAX_M 16
#define GEMV_COLS 256

/* Narrow B decodes element by element here, which only pays while few rows share each decode (measured). */
static bool gemv_fits(const mat *x) {
    return (x->sb1 == 1 || x->sb0 == 1)
           && (x->tb == SIPU_F32 ? x->m <= GEMV_MAX_M : (x->tb == SIPU_BF16 || x->tb == SIPU_F16) && x->m <= 4);
}

static sipu_status gemv_small(const mat *x) {
    const int64_t M = x->m, N = x->n, K = x->k;
    const int ia = sipu_itemsize(x->ta), ib = sipu_itemsize(x->tb), io = sipu_itemsize(x->to);
    const int threads = sipu_threads();
    const bool rows = x->sb1 == 1; /* row-major B, else transposed */
    const int64_t per = rows ? (M + 1) * GEMV_COLS : K;
    float *a32 = malloc((size_t) (M * K + 1) * sizeof(float)), *scratch = malloc((size_t) threads * (size_t) (per + 1) * sizeof(float));
    if (!a32 || !scratch) {
        free(a32);
        free(scratch);
        return sipu_fail(SIPU_ERR_OUT_OF_MEMORY, "sipu_matmul: no memory for a [%lld, %lld] product", (long long) M, (long long) K);
    }
    for (int64_t i = 0; i < M; i++)
        for (int64_t p = 0; p < K; p++) a32[i * K + p] = load_f32(x->a + (i * x->sa0 + p * x->sa1) * ia, x->ta);
    const int64_t blocks = rows ? (N + GEMV_COLS - 1) / GEMV_COLS : N;
    #pragma omp parallel num_threads(threads) if (M * N * K > 100000)
    {
        #ifdef _OPENMP
        float *mine = scratch + (size_t) omp_get_thread_num() * (size_t) (per + 1);
        #else
        float *mine = scratch;
        #endif
        #pragma omp for schedule(static)
        for (int64_t blk = 0; blk < blocks; blk++) {
            if (rows) {
                int64_t j0 = blk * GEMV_COLS, w = N - j0 < GEMV_COLS ? N - j0 : GEMV_COLS;
                float *brow = mine, *acc = mine + GEMV_COLS;
                for (int64_t e = 0; e < M * GEMV_COLS; e++) acc[e] = 0;
                for (int64_t p = 0; p < K; p++) {
                    const char *pb = x->b + (p * x->sb0 + j0) * ib;
                    if (x->tb == SIPU_F32) memcpy(brow, pb, (size_t) w * sizeof(float));
                    else for (int64_t j = 0; j < w; j++) brow[j] = load_f32(pb + j * ib, x->tb);
                    for (int64_t i = 0; i < M; i++) {
                        const float av = a32[i * K + p];
                        float *ai = acc + i * GEMV_COLS;
                        for (int64_t j = 0; j < w; j++) ai[j] += av * brow[j];
                    }
                }
                for (int64_t i = 0; i < M; i++)
                    for (int64_t j = 0; j < w; j++) {
                        float v = acc[i * GEMV_COLS + j];
                        if (x->bias) v += load_f32(x->bias + (j0 + j) * x->sbias * sipu_itemsize(x->tbias), x->tbias);
                        store_f32(x->o + (i * x->so0 + (j0 + j) * x->so1) * io, x->to, v);
                    }
            } else {
                const int64_t j = blk;
                const char *pb = x->b + j * x->sb1 * ib;
                const float *wrow = (const float *) pb;
                if (x->tb != SIPU_F32) {
                    for (int64_t p = 0; p < K; p++) mine[p] = load_f32(pb + p * ib, x->tb);
                    wrow = mine;
                }
                for (int64_t i = 0; i < M; i++) {
                    float v = sipu_dot_f32(a32 + i * K, wrow, K);
                    if (x->bias) v += load_f32(x->bias + j * x->sbias * sipu_itemsize(x->tbias), x->tbias);
                    store_f32(x->o + (i * x->so0 + j * x->so1) * io, x->to, v);
                }
            }
        }
    }
    free(a32);
    free(scratch);
    return SIPU_OK;
}

static void gemm_exact(const mat *x) {
    const int ia = sipu_itemsize(x->ta), ib = sipu_itemsize(x->tb), io = sipu_itemsize(x->to);
    #pragma omp parallel for num_threads(sipu_threads()) if (x->m * x->n * x->k > 100000)
    for (int64_t i = 0; i < x->m; i++)
        for (int64_t j = 0; j < x->n; j++) {
            const char *pa = x->a + i * x->sa0 * ia, *pb = x->b + j * x->sb1 * ib;
            char *po = x->o + (i * x->so0 + j * x->so1) * io;
            if (x->to == SIPU_F64) {
                double s = x->bias ? load_f64(x->bias + j * x->sbias * sipu_itemsize(x->tbias), x->tbias) : 0;
                for (int64_t p = 0; p < x->k; p++) s += load_f64(pa + p * x->sa1 * ia, x->ta) * load_f64(pb + p * x->sb0 * ib, x->tb);
                store_f64(po, x->to, s);
            } else {
                uint64_t s = x->bias ? (uint64_t) load_i64(x->bias + j * x->sbias * sipu_itemsize(x->tbias), x->tbias) : 0;
                for (int64_t p = 0; p < x->k; p++)
                    s += (uint64_t) load_i64(pa + p * x->sa1 * ia, x->ta) * (uint64_t) load_i64(pb + p * x->sb0 * ib, x->tb);
                store_i64(po, x->to, (int64_t) s);
            }
        }
}

SIPU_API sipu_status sipu_matmul(const sipu_tensor *out, const sipu_tensor *a, const sipu_tensor *b, const sipu_tensor *bias) {
    sipu_status st;
    if ((st = sipu_check(out, "sipu_matmul", "out")) || (st = sipu_check(a, "sipu_matmul", "a")) || (st = sipu_check(b, "sipu_matmul", "b")))
        return st;
    if (bias && (st = sipu_check(bias, "sipu_matmul", "bias"))) return st;
    int nd = a->ndim;
    if ((nd != 2 && nd != 3) || b->ndim != nd || out->ndim != nd)
        return sipu_fail(SIPU_ERR_INVALID_ARGUMENT, "sipu_matmul: a, b and out must all be 2-D or 3-D (got %d, %d, %d)", a->ndim, b->ndim, out->ndim);
    int d0 = nd - 2;
    int64_t batch = nd == 3 ? a->sizes[0] : 1;
    int64_t M = a->sizes[d0], K = a->sizes[d0 + 1], N = b->sizes[d0 + 1];
    if (b->sizes[d0] != K)
        return sipu_fail(SIPU_ERR_INVALID_ARGUMENT, "sipu_matmul: a and b inner dimensions differ (%lld vs %lld)", (long long) K, (long long) b->sizes[d0]);
    if ((nd == 3 && (b->sizes[0] != batch || out->sizes[0] != batch)) || out->sizes[d0] != M || out->sizes[d0 + 1] != N)
        return sipu_fail(SIPU_ERR_INVALID_ARGUMENT, "sipu_matmul: out has the wrong shape for [%lld, %lld] x [%lld, %lld]",
                         (long long) M, (long long) K, (long long) K, (long long) N);
    /* out matches the inputs, or is float32 for f16/bf16 inputs (mm.dtype: fp32 accumulate and out) */
    bool widened = out->dtype == SIPU_F32 && (a->dtype == SIPU_F16 || a->dtype == SIPU_BF16);
    if (a->dtype != b->dtype || (out->dtype != a->dtype && !widened))
        return sipu_fail(SIPU_ERR_UNSUPPORTED_DTYPE, "sipu_matmul: dtypes differ (a %s, b %s, out %s)",
                         sipu_dtype_name(a->dtype), sipu_dtype_name(b->dtype), sipu_dtype_name(out->dtype));
    if (a->dtype == SIPU_BOOL || a->dtype == SIPU_F8E4M3FN || a->dtype == SIPU_F8E5M2)
        return sipu_fail(SIPU_ERR_UNSUPPORTED_DTYPE, "sipu_matmul: %s is not supported", sipu_dtype_name(a->dtype));
    if (bias && (bias->ndim != 1 || bias->sizes[0] != N))
        return sipu_fail(SIPU_ERR_INVALID_ARGUMENT, "sipu_matmul: bias must be [%lld]", (long long) N);
    if (M == 0 || N == 0) return SIPU_OK;
    for (int64_t bi = 0; bi < batch; bi++) {
        mat x = {M, N, K,
                 (const char *) a->data + (nd == 3 ? bi * a->strides[0] * sipu_itemsize(a->dtype) : 0),
                 (const char *) b->data + (nd == 3 ? bi * b->strides[0] * sipu_itemsize(b->dtype) : 0),
                 (char *) out->data + (nd == 3 ? bi * out->strides[0] * sipu_itemsize(out->dtype) : 0),
                 bias ? bias->data : NULL,
                 a->strides[d0], a->strides[d0 + 1], b->strides[d0], b->strides[d0 + 1], out->strides[d0], out->strides[d0 + 1],
                 bias ? bias->strides[0] : 0, a->dtype, b->dtype, out->dtype, bias ? bias->dtype : SIPU_F32};
        if (a->dtype == SIPU_F32 || a->dtype == SIPU_F16 || a->dtype == SIPU_BF16) {
            /* K-contiguous weights (linear's t()) stream faster through gemm_kernels.c's small-M path */
            bool axpy = gemv_fits(&x) && x.sb0 != 1;
            if ((st = axpy ? gemv_small(&x) : gemm_float(&x))) return st;
        } else {
            gemm_exact(&x);
        }
    }
    return SIPU_OK;
}
