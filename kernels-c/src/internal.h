/* Shared internals of libsipu_kernels: errors, descriptor checks, the ISA dispatch table. */
#ifndef SIPU_INTERNAL_H
#define SIPU_INTERNAL_H

#include "sipu_kernels.h"

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#define SIPU_API __attribute__((visibility("default")))

/* Records a message for sipu_last_error() on this thread and returns the code. */
sipu_status sipu_fail(sipu_status code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

int sipu_threads(void);
/*
 * The threads worth waking for `work` (flops, or bytes moved): one until there are a few million
 * per thread. Below that a parallel region costs more than it saves on a quiet machine, and on a
 * busy one (a JVM's own threads, other processes) each region can wait a scheduler slice for its
 * workers: small ops (decode steps of a small model) must not fork at all.
 */
int sipu_threads_for(double work);
/* AMX tiles usable (cpuid, XCR0 and the OS permission; not with SIPU_SIMD forcing a lower path) */
bool sipu_amx(void);
/* Whether the CPU and the OS offer AMX-BF16 at all, whatever SIPU_SIMD forces (the machine-limit probe). */
bool sipu_amx_available(void);

/*
 * Host scratch for one call's temporaries, 64-byte aligned (free() releases it): from 1 MiB on, whole 2 MiB
 * pages advised as transparent huge pages, so the kernel maps a fresh buffer in a few faults rather
 * than one per 4 KiB page (fused_experts' ~11 MB of buffers: ~2.5 ms of page faults per call).
 */
void *sipu_alloc_scratch(size_t bytes);

/* Element size of a dtype code, 0 for an invalid code. */
int sipu_itemsize(int32_t dtype);
const char *sipu_dtype_name(int32_t dtype);
static inline bool sipu_is_float(int32_t d) { return d >= SIPU_F64 && d <= SIPU_F8E5M2; }
static inline bool sipu_is_int(int32_t d) { return d >= SIPU_I64 && d <= SIPU_U8; }

/* numel of a descriptor (checked by sipu_check). */
int64_t sipu_numel(const sipu_tensor *t);

/*
 * Validates a descriptor before any memory is touched: not NULL, ndim in range, sizes >= 0, numel
 * without overflow, a known dtype, data present unless empty. fn/arg name the failing call.
 */
sipu_status sipu_check(const sipu_tensor *t, const char *fn, const char *arg);
/* Same ndim and sizes as `ref`. */
sipu_status sipu_check_same_shape(const sipu_tensor *t, const sipu_tensor *ref, const char *fn, const char *arg);

/* Vectorized inner loops, one implementation per ISA (vec_impl.inc compiled with each ISA's flags). */
typedef struct {
    const char *name;
    void (*binary_f32)(int op, int64_t n, const float *a, const float *b, float *out, float alpha);
    void (*unary_f32)(int op, int64_t n, const float *a, float *out);
    /* C[MR x NR] (+)= A[MR x K] * Bpanel[K x NR], see gemm.c */
    void (*gemm_tile)(int64_t k, const float *a, int64_t lda, const float *bp, float *c, int64_t ldc, int mr, int nr);
    /* Staging of contiguous f32/bf16/f16 rows through fp32. */
    void (*row_to_f32)(int32_t dtype, int64_t n, const void *src, float *dst);
    void (*row_from_f32)(int32_t dtype, int64_t n, const float *src, void *dst);
    /*
     * Fused row ops (llm.c) on contiguous rows of dtype f32/bf16/f16, read and written in place;
     * wide_in: the input row is fp32 whatever the dtype (fused_add_rms_norm's sum). sum_squares is
     * rms_norm's double-precision sum, scale_mul its round_t(round_t(x * inv) * w), silu_mul
     * silu_and_mul of a row [a | b] of 2n elements into n.
     */
    float (*sum_squares)(int32_t dtype, int wide_in, int64_t n, const void *x);
    void (*scale_mul)(int32_t dtype, int wide_in, int64_t n, const void *x, float inv, const float *w, void *out);
    void (*silu_mul)(int32_t dtype, int64_t n, const void *x, void *out);
    void (*add_f32)(int64_t n, const float *x, const float *r, float *z);
    /* First index of the maximum (or first NaN) of n > 0 contiguous floats, and that value. */
    int64_t (*argmax_f32)(int64_t n, const float *x, float *value);
    /* topk's block test (sort.c): offset of the first 64-block of x[0..n) that holds an element
     * going strictly before t (descending: > t or NaN), n if none */
    int64_t (*skip_blocks_f32)(int64_t n, const float *x, float t, int desc);
    /* Rotary embedding of one contiguous fp32 head in place (rope.c). */
    void (*rope_f32)(int64_t half, float *x, const float *cs, int neox);
    /* out[i] = e^x[i] within ~2 ulp of expf, incl. subnormal results, +-inf and NaN (out may be x) */
    void (*exp_f32)(int64_t n, const float *x, float *out);
    /* softmax or log_softmax of n contiguous floats into out (may be x), see reduce.c; narrow: a
     * narrow log_softmax's output dtype (its sum and log rounded to it), else 0 */
    void (*softmax_f32)(int64_t n, const float *x, float *out, int log_softmax, int32_t narrow);
    /*
     * n contiguous elements converted between f32, f16 and bf16 (from != to), bit-exact with
     * convert.h's conversions (c10's), NaN included.
     */
    void (*cast_float)(int64_t n, int32_t from, const void *src, int32_t to, void *dst);
    /* s[r * lds + j] = q_r . k_j over d elements, r < nr, j < nk (attention's few-row path) */
    void (*dot_rows_f32)(int nr, int nk, int64_t d, const float *q, int64_t ldq, const float *k, int64_t ldk, float *s, int64_t lds);
    /* o[r * ldo + c] += sum_j p[r * ldp + j] * v[j * ldv + c], c < d */
    void (*axpy_rows_f32)(int nr, int nk, int64_t d, const float *p, int64_t ldp, const float *v, int64_t ldv, float *o, int64_t ldo);
    /*
     * One row's online-softmax step over a key tile (attention.c): of the n scores x, those outside
     * [a, e) are masked (become 0); the others become e^(scale x[i] - m') with m' = max(*m, scale
     * x[i]) (NaN scores skipped, as fmaxf skips them). *l = *l c + the sum of the new x, the row's
     * accumulator o[0..dv) *= c, where c = e^(*m - m'), and *m = m'. exp as exp_f32.
     */
    void (*softmax_step_f32)(int64_t n, float *x, int64_t a, int64_t e, float scale, float *m, float *l, float *o, int64_t dv);
    /* o[i] *= c */
    void (*scale_f32)(int64_t n, float *o, float c);
} sipu_vtable;

extern const sipu_vtable sipu_vt_scalar, sipu_vt_avx2, sipu_vt_avx512;
const sipu_vtable *sipu_vt(void);

/* n elements of dtype t, `stride` elements apart, as fp32 (load_f32's conversion); contiguous
 * f32/bf16/f16 rows take the running ISA's row_to_f32 (exact, the same values) */
void sipu_row_to_f32_strided(const void *src, int32_t t, int64_t stride, int64_t n, float *dst);

/* Dot product in fp32 with eight running sums: a fixed order, so every thread count agrees. */
static inline float sipu_dot_f32(const float *a, const float *b, int64_t n) {
    float s[8] = {0};
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (int j = 0; j < 8; j++) s[j] += a[i + j] * b[i + j];
    float r = ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7]));
    for (; i < n; i++) r += a[i] * b[i];
    return r;
}

#define SIPU_GEMM_MR 4
#define SIPU_GEMM_NR 32

#endif
