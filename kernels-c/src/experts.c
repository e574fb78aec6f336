/*
 * vLLM's fused MoE experts (inplace_fused_experts) in one call: the (token, slot) pairs are grouped
 * by expert, each expert's rows go through GEMM1 -> silu_and_mul -> GEMM2 while its weight rows
 * stream once per expert, and the router-weighted results are summed per token into hidden_states
 * at the very end, after every id has been checked and every buffer obtained.
 *
 * Precision follows the recorded torch-2.11 cases (both bit-exact under this reading), not the
 * roundings SEMANTICS.md §10 sketches: every intermediate stays fp32 - h1 = x W1^T, h2 = silu(g) * u,
 * h3 = (h2 W2^T) * w - and the per-token sum over the slots is rounded to T once. The roundings matter
 * most on the FP8 path: h2 is quantized to e4m3 per 128-group, so a bf16-rounded h2 flips codes near
 * their midpoints and moves results by several percent. FP8 (scales given): e4m3 weights with
 * 128x128 block multipliers, activations quantized per row and 128-wide group (amax/448, eps 1e-10,
 * fp32 scales, saturating e4m3) before each GEMM, each 128-block sum scaled by both scales in fp32.
 */
#include "convert.h"
#include "experts_amx.h"
#include "gemm_kernels.h"
#include "internal.h"

#include <math.h>
#include <stdlib.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#define QB 128 /* quantization block */
#define NB 32  /* weight rows per task */

static int thread_id(void) {
#ifdef _OPENMP
    return omp_get_thread_num();
#else
    return 0;
#endif
}

/* per_token_group_quant_fp8 of one row in place: x becomes its e4m3 values (decoded, exact), s the group scales. */
static void quant_row(float *x, int64_t n, float *s) {
    for (int64_t g = 0; g * QB < n; g++) {
        int64_t lo = g * QB, hi = lo + QB < n ? lo + QB : n;
        float amax = 0;
        /* fmaxf without the libm call: amax is never NaN, and a NaN |x| is skipped as fmaxf skips it */
        for (int64_t i = lo; i < hi; i++) {
            float a = fabsf(x[i]);
            amax = a > amax ? a : amax;
        }
        float sc = (amax > 1e-10f ? amax : 1e-10f) / 448.0f;
        s[g] = sc;
        for (int64_t i = lo; i < hi; i++) x[i] = e4m3_round_sat(x[i] / sc);
    }
}

typedef struct {
    const sipu_tensor *w, *scale; /* weight [E, rows, cols] (last dim contiguous); block scales or NULL */
    int64_t rows, cols;
} weights;

/*
 * out[r, n] = x[r] . W[e][n] for n in [n0, n1) and the R rows of x (fp8: per 128-block sums times
 * xs[r, kb] * scale[e, n / 128, kb]). wrow is scratch of cols floats.
 */
static void gemm_block(const weights *g, int64_t e, int64_t n0, int64_t n1, const float *x, const float *xs, int64_t R,
                       float *out, int64_t ld, float *wrow) {
    const int item = sipu_itemsize(g->w->dtype);
    const int64_t K = g->cols, KB = (K + QB - 1) / QB;
    for (int64_t n = n0; n < n1; n++) {
        const char *p = (const char *) g->w->data + (e * g->w->strides[0] + n * g->w->strides[1]) * item;
        for (int64_t c = 0; c < K; c++) wrow[c] = load_f32(p + c * item, g->w->dtype);
        for (int64_t r = 0; r < R; r++) {
            const float *xr = x + r * K;
            float acc;
            if (!g->scale) {
                acc = sipu_dot_f32(xr, wrow, K);
            } else {
                const float *sc = (const float *) g->scale->data + e * g->scale->strides[0] + (n / QB) * g->scale->strides[1];
                acc = 0;
                for (int64_t kb = 0; kb < KB; kb++) {
                    int64_t lo = kb * QB, len = lo + QB < K ? QB : K - lo;
                    acc += sipu_dot_f32(xr + lo, wrow + lo, len) * xs[r * KB + kb] * sc[kb * g->scale->strides[2]];
                }
            }
            out[r * ld + n] = acc;
        }
    }
}

/*
 * FP8 through the block-scaled GEMM of fp8_gemm (gemm_kernels.c: AMX tiles or bf16 dots where the CPU
 * has them, fp32 FMA otherwise), one call per expert, experts side by side as gemm_experts_dense runs
 * them: the quantized activations are e4m3 values, so their bf16 copy is exact, and each 128-block
 * sum is scaled as (part * xs[r, kb]) * scale[e, n / 128, kb], the order of the loop below. false when
 * the scales' last dimension is strided or memory runs out; the loop below then computes every expert.
 */
static bool gemm_experts_fp8(const weights *g, const int64_t *off, int64_t E, const float *x, const float *xs, float *out) {
    const int64_t V = off[E], K = g->cols, KB = (K + QB - 1) / QB;
    if (g->scale->sizes[2] > 1 && g->scale->strides[2] != 1) return false;
    uint16_t *xb = malloc((size_t) (V * K + 1) * sizeof(uint16_t));
    if (!xb) return false;
    #pragma omp parallel for num_threads(sipu_threads_for((double) V * (double) K))
    for (int64_t i = 0; i < V * K; i++) xb[i] = f32_to_bf16(x[i]);
    const int wi = sipu_itemsize(g->w->dtype), threads = sipu_threads_for(2.0 * (double) V * (double) g->rows * (double) K);
    int64_t used = 0;
    for (int64_t e = 0; e < E; e++) used += off[e + 1] > off[e];
    int failed = 0;
    /* many experts: side by side, one thread each (the GEMM's own region is nested), no barrier per expert */
    #pragma omp parallel for num_threads(threads) schedule(dynamic, 1) if (used >= 2 * threads) reduction(|:failed)
    for (int64_t e = 0; e < E; e++) {
        int64_t R = off[e + 1] - off[e];
        if (R == 0 || failed) continue;
        sipu_gemm_job j;
        memset(&j, 0, sizeof j);
        j.m = R, j.n = g->rows, j.k = K;
        j.a = (const char *) (xb + off[e] * K), j.sa0 = K, j.sa1 = 1, j.ta = SIPU_BF16;
        /* b = W_e^T: K along the contiguous last dim, N along the rows (any stride when there is one row) */
        j.b = (const char *) g->w->data + e * g->w->strides[0] * wi, j.sb0 = 1, j.sb1 = g->rows == 1 ? K : g->w->strides[1], j.tb = g->w->dtype;
        j.c = out + off[e] * g->rows, j.ldc = g->rows;
        j.as = xs + off[e] * KB, j.ldas = KB;
        j.bs = (const float *) g->scale->data + e * g->scale->strides[0], j.ldbs = g->scale->strides[1];
        failed |= sipu_gemm_run(&j, "sipu_fused_experts") != SIPU_OK;
    }
    free(xb);
    return !failed;
}

/* One GEMM over every expert: rows of expert e are x[off[e] .. off[e+1]); tasks are (expert, 32 weight rows). */
static void gemm_experts(const weights *g, const int64_t *off, int64_t E, const float *x, const float *xs, float *out,
                         float *scratch) {
    if (xs && gemm_experts_fp8(g, off, E, x, xs, out)) return;
    const int64_t blocks = (g->rows + NB - 1) / NB, KB = (g->cols + QB - 1) / QB;
    #pragma omp parallel num_threads(sipu_threads_for(2.0 * (double) off[E] * (double) g->rows * (double) g->cols))
    {
        float *wrow = scratch + (size_t) thread_id() * (size_t) g->cols;
        #pragma omp for collapse(2) schedule(dynamic, 1)
        for (int64_t e = 0; e < E; e++)
            for (int64_t b = 0; b < blocks; b++) {
                int64_t R = off[e + 1] - off[e];
                if (R == 0) continue;
                int64_t n0 = b * NB, n1 = n0 + NB < g->rows ? n0 + NB : g->rows;
                gemm_block(g, e, n0, n1, x + off[e] * g->cols, xs ? xs + off[e] * KB : NULL, R, out + off[e] * g->rows, g->rows, wrow);
            }
    }
}

/*
 * Without fp8 scales each expert's product is one call of the packed GEMM (gemm_kernels.c; bf16
 * pairs on vdpbf16ps where the CPU has them). With enough experts in use they run side by side, one
 * thread each (the GEMM's parallel region is nested, so one thread unless nesting is enabled), balanced dynamically; otherwise
 * one after another with all threads in each. x holds rows of dtype tx (bf16 rows are exact:
 * hidden's values; h2 stays fp32, as the recorded precision requires).
 */
static sipu_status gemm_experts_dense(const weights *g, const int64_t *off, int64_t E, const void *x, int32_t tx, float *out,
                                      const char *fn) {
    const int xi = sipu_itemsize(tx), wi = sipu_itemsize(g->w->dtype);
    const int threads = sipu_threads_for(2.0 * (double) off[E] * (double) g->rows * (double) g->cols);
    int64_t used = 0;
    for (int64_t e = 0; e < E; e++) used += off[e + 1] > off[e];
    sipu_status st = SIPU_OK;
    #pragma omp parallel for num_threads(threads) schedule(dynamic, 1) if (used >= 2 * threads)
    for (int64_t e = 0; e < E; e++) {
        int64_t R = off[e + 1] - off[e];
        if (R == 0) continue;
        sipu_gemm_job j;
        memset(&j, 0, sizeof j);
        j.m = R, j.n = g->rows, j.k = g->cols;
        j.a = (const char *) x + off[e] * g->cols * xi, j.sa0 = g->cols, j.sa1 = 1, j.ta = tx;
        /* b = W_e^T: K along the contiguous last dim of w, N along its rows */
        j.b = (const char *) g->w->data + e * g->w->strides[0] * wi, j.sb0 = 1, j.sb1 = g->w->strides[1], j.tb = g->w->dtype;
        j.c = out + off[e] * g->rows, j.ldc = g->rows;
        sipu_status s1 = sipu_gemm_run(&j, fn);
        if (s1) {
            #pragma omp critical(sipu_experts_status)
            st = s1;
        }
    }
    return st;
}

/*
 * GEMM2 of bf16 experts on AMX. h2 is fp32, so it is split exactly into three bf16 parts, hi =
 * bf16(x), mid = bf16(x - hi), lo = bf16(x - hi - mid): each difference is exact in fp32 (Sterbenz)
 * and three 8-bit significands hold fp32's 24 bits, so hi + mid + lo == x unless lo falls below
 * bf16's normal range (|x| < 2^-102, where the tiles flush it: an error below 2^-126 |w|). Every
 * product of a part with a bf16 weight is exact in fp32, so the K-concatenation [hi | mid | lo] x
 * [W2; W2; W2] is the fp32 GEMM up to the order of its fp32 sums (which any GEMM blocking changes
 * anyway); experts_amx.c runs the three parts against each weight tile, so the weights stream once.
 * Measured on the benchmark's shape: 27 of 131072 bf16 outputs moved by one ulp, the recorded cases
 * stay bit-exact.
 */
#define SPLIT_TASK 1024 /* W2 rows per task */

/* true when every |x| is within bf16's finite range (else bf16(x) would be inf and the parts NaN) */
static bool split_row(const sipu_vtable *vt, int64_t n, const float *x, uint16_t *hi, uint16_t *mid, uint16_t *lo, float *r1, float *r2) {
    bool finite = true;
    for (int64_t i = 0; i < n; i++) finite &= fabsf(x[i]) <= 0x1.fep127f; /* the largest finite bf16 */
    vt->cast_float(n, SIPU_F32, x, SIPU_BF16, hi);
    vt->cast_float(n, SIPU_BF16, hi, SIPU_F32, r1);
    for (int64_t i = 0; i < n; i++) r1[i] = x[i] - r1[i];
    vt->cast_float(n, SIPU_F32, r1, SIPU_BF16, mid);
    vt->cast_float(n, SIPU_BF16, mid, SIPU_F32, r2);
    for (int64_t i = 0; i < n; i++) r2[i] = r1[i] - r2[i];
    vt->cast_float(n, SIPU_F32, r2, SIPU_BF16, lo);
    return finite;
}

/* 32-bit words of an expert's packed parts: per 16 rows, the three parts' [kq][16] a^T panels */
static int64_t split_words(int64_t R, int64_t kq) { return (R + GK_AMX_DEC_M - 1) / GK_AMX_DEC_M * SIPU_SPLIT_PARTS * kq * 16; }

/*
 * An expert's R rows of h2 split and packed at `at` for experts_amx.c; stack is scratch of 3R x I
 * bf16 (the parts stacked [hi; mid; lo]) and two rows of fp32. false when some |h2| is beyond bf16's
 * range.
 */
static bool pack_split(const gk_isa *isa, const sipu_vtable *vt, const float *h2, int64_t R, int64_t I, int64_t kq, uint32_t *at,
                       uint16_t *stack, float *tmp) {
    bool finite = true;
    for (int64_t r = 0; r < R; r++)
        finite &= split_row(vt, I, h2 + r * I, stack + r * I, stack + (R + r) * I, stack + (2 * R + r) * I, tmp, tmp + I);
    for (int64_t r0 = 0; r0 < R; r0 += GK_AMX_DEC_M) {
        const int mc = (int) (R - r0 < GK_AMX_DEC_M ? R - r0 : GK_AMX_DEC_M);
        for (int part = 0; part < SIPU_SPLIT_PARTS; part++)
            isa->pack_kt(GK_PK_BF16, stack + (part * R + r0) * I, I, I, mc, at + (r0 / GK_AMX_DEC_M * SIPU_SPLIT_PARTS + part) * kq * 16, 16, kq);
    }
    return finite;
}

/*
 * h3 = h2 W2^T for every expert on AMX: the parts packed per expert, then tasks of (expert, 1024 rows
 * of W2). false (h3 not written) when memory runs out or h2 leaves bf16's range; the fp32 GEMM runs
 * instead.
 */
static bool gemm2_split(const weights *g, const int64_t *off, int64_t E, const float *h2, float *h3, int threads) {
    const int64_t I = g->cols, H = g->rows, kq = (I + 127) / 128 * 64, blocks = (H + SPLIT_TASK - 1) / SPLIT_TASK;
    int64_t *aoff = malloc((size_t) (E + 1) * sizeof(int64_t)), rmax = 0;
    if (!aoff) return false;
    aoff[0] = 0;
    for (int64_t e = 0; e < E; e++) {
        const int64_t R = off[e + 1] - off[e];
        aoff[e + 1] = aoff[e] + split_words(R, kq);
        if (R > rmax) rmax = R;
    }
    /* per thread, in floats: the stacked parts and two fp32 rows */
    const int64_t nstack = (SIPU_SPLIT_PARTS * rmax * I + 1) / 2, per = nstack + 2 * I + 16;
    uint32_t *at = sipu_alloc_scratch((size_t) (aoff[E] + 16) * 4);
    float *scratch = malloc((size_t) threads * (size_t) per * sizeof(float));
    const gk_isa *isa = sipu_gk_pick();
    const sipu_vtable *vt = sipu_vt();
    bool ok = at && scratch;
    if (ok) {
        #pragma omp parallel for num_threads(threads) schedule(dynamic, 1) reduction(&&:ok)
        for (int64_t e = 0; e < E; e++) {
            float *mine = scratch + (size_t) thread_id() * (size_t) per;
            ok = pack_split(isa, vt, h2 + off[e] * I, off[e + 1] - off[e], I, kq, at + aoff[e], (uint16_t *) mine, mine + nstack) && ok;
        }
    }
    if (ok) {
        const int64_t ldw = g->w->strides[1];
        #pragma omp parallel num_threads(threads)
        {
            sipu_gk_amx_begin();
            #pragma omp for collapse(2) schedule(dynamic, 1)
            for (int64_t e = 0; e < E; e++)
                for (int64_t b = 0; b < blocks; b++) {
                    const int64_t n0 = b * SPLIT_TASK, nn = H - n0 < SPLIT_TASK ? H - n0 : SPLIT_TASK;
                    const uint16_t *w = (const uint16_t *) g->w->data + e * g->w->strides[0] + n0 * ldw;
                    for (int64_t r0 = off[e]; r0 < off[e + 1]; r0 += GK_AMX_DEC_M) {
                        const int mc = (int) (off[e + 1] - r0 < GK_AMX_DEC_M ? off[e + 1] - r0 : GK_AMX_DEC_M);
                        const uint32_t *parts = at + aoff[e] + (r0 - off[e]) / GK_AMX_DEC_M * SIPU_SPLIT_PARTS * kq * 16;
                        sipu_experts_amx_split(nn, I, parts, w, ldw, mc, h3 + r0 * H + n0, H);
                    }
                }
            sipu_gk_amx_end();
        }
    }
    free(aoff), free(at), free(scratch);
    return ok;
}

static sipu_status check_scale(const sipu_tensor *s, int64_t E, int64_t rows, int64_t cols, const char *fn, const char *arg) {
    sipu_status st = sipu_check(s, fn, arg);
    if (st) return st;
    if (s->dtype != SIPU_F32 || s->ndim != 3 || s->sizes[0] != E || s->sizes[1] != (rows + QB - 1) / QB || s->sizes[2] != (cols + QB - 1) / QB)
        return sipu_fail(SIPU_ERR_INVALID_ARGUMENT, "%s: %s must be float32 [%lld, %lld, %lld]", fn, arg, (long long) E,
                         (long long) ((rows + QB - 1) / QB), (long long) ((cols + QB - 1) / QB));
    return SIPU_OK;
}

SIPU_API sipu_status sipu_fused_experts(const sipu_tensor *hidden, const sipu_tensor *w1, const sipu_tensor *w2,
                                        const sipu_tensor *topk_weights, const sipu_tensor *topk_ids,
                                        const sipu_tensor *expert_map, const sipu_tensor *w1_scale,
                                        const sipu_tensor *w2_scale, int32_t apply_router_weight_on_input) {
    const char *fn = "sipu_fused_experts";
    sipu_status st;
    if ((st = sipu_check(hidden, fn, "hidden_states")) || (st = sipu_check(w1, fn, "w1")) || (st = sipu_check(w2, fn, "w2"))
        || (st = sipu_check(topk_weights, fn, "topk_weights")) || (st = sipu_check(topk_ids, fn, "topk_ids"))
        || (expert_map && (st = sipu_check(expert_map, fn, "expert_map"))))
        return st;
    const bool fp8 = w1_scale != NULL;
    const int32_t t = hidden->dtype;
    if (hidden->ndim != 2 || w1->ndim != 3 || w2->ndim != 3 || topk_weights->ndim != 2 || topk_ids->ndim != 2)
        return sipu_fail(SIPU_ERR_INVALID_ARGUMENT, "%s: expects hidden [T, H], w1 [E, 2I, H], w2 [E, H, I], topk [T, K]", fn);
    const int64_t T = hidden->sizes[0], H = hidden->sizes[1], E = w1->sizes[0], I = w1->sizes[1] / 2, K = topk_ids->sizes[1];
    if (w1->sizes[1] != 2 * I || w1->sizes[2] != H || w2->sizes[0] != E || w2->sizes[1] != H || w2->sizes[2] != I
        || topk_ids->sizes[0] != T || topk_weights->sizes[0] != T || topk_weights->sizes[1] != K
        || (w1->sizes[2] > 1 && w1->strides[2] != 1) || (w2->sizes[2] > 1 && w2->strides[2] != 1))
        return sipu_fail(SIPU_ERR_INVALID_ARGUMENT, "%s: shapes disagree (hidden [%lld, %lld], w1 [E, 2I, H] and w2 [E, H, I] with rows contiguous)",
                         fn, (long long) T, (long long) H);
    if (!(t == SIPU_F32 || t == SIPU_F16 || t == SIPU_BF16) || topk_weights->dtype != SIPU_F32
        || !(topk_ids->dtype == SIPU_I32 || topk_ids->dtype == SIPU_I64)
        || (fp8 ? (w1->dtype != SIPU_F8E4M3FN || w2->dtype != SIPU_F8E4M3FN) : (w1->dtype != t || w2->dtype != t))
        || (expert_map && (expert_map->ndim != 1 || !(expert_map->dtype == SIPU_I32 || expert_map->dtype == SIPU_I64))))
        return sipu_fail(SIPU_ERR_UNSUPPORTED_DTYPE, "%s: dtypes: hidden f32/f16/bf16, weights of its dtype (or e4m3 with scales), float32 topk_weights, int topk_ids", fn);
    if (fp8 && (!w2_scale || (st = check_scale(w1_scale, E, 2 * I, H, fn, "w1_scale")) || (st = check_scale(w2_scale, E, H, I, fn, "w2_scale"))))
        return st ? st : sipu_fail(SIPU_ERR_INVALID_ARGUMENT, "%s: fp8 needs both w1_scale and w2_scale", fn);
    if (fp8 && (H % QB || I % QB))
        return sipu_fail(SIPU_ERR_INVALID_ARGUMENT, "%s: with fp8, hidden size %lld and intermediate size %lld must be multiples of %d",
                         fn, (long long) H, (long long) I, QB);
    if (apply_router_weight_on_input && K != 1)
        return sipu_fail(SIPU_ERR_INVALID_ARGUMENT, "%s: apply_router_weight_on_input needs top-k 1, got %lld", fn, (long long) K);
    const int64_t P = T * K, global = expert_map ? expert_map->sizes[0] : E;

    /* Every id checked (and mapped) before anything else. */
    int64_t *local = malloc((size_t) (P + 1) * sizeof(int64_t)), *off = calloc((size_t) (E + 2), sizeof(int64_t));
    int64_t *order = malloc((size_t) (P + 1) * sizeof(int64_t)), *slot = malloc((size_t) (P + 1) * sizeof(int64_t));
    if (!local || !off || !order || !slot) {
        free(local), free(off), free(order), free(slot);
        return sipu_fail(SIPU_ERR_OUT_OF_MEMORY, "%s: no memory for %lld pairs", fn, (long long) P);
    }
    const int ii = sipu_itemsize(topk_ids->dtype);
    for (int64_t p = 0; p < P; p++) {
        int64_t tok = p / K, k = p % K;
        int64_t id = load_i64((const char *) topk_ids->data + (tok * topk_ids->strides[0] + k * topk_ids->strides[1]) * ii, topk_ids->dtype);
        if (id < 0 || id >= global) {
            free(local), free(off), free(order), free(slot);
            return sipu_fail(SIPU_ERR_INDEX_OUT_OF_RANGE, "%s: topk_ids[%lld, %lld] = %lld outside [0, %lld)", fn, (long long) tok,
                             (long long) k, (long long) id, (long long) global);
        }
        if (expert_map) {
            id = load_i64((const char *) expert_map->data + id * expert_map->strides[0] * sipu_itemsize(expert_map->dtype), expert_map->dtype);
            if (id < -1 || id >= E) {
                free(local), free(off), free(order), free(slot);
                return sipu_fail(SIPU_ERR_INDEX_OUT_OF_RANGE, "%s: expert_map sends an id to %lld, outside [-1, %lld)", fn, (long long) id,
                                 (long long) E);
            }
        }
        local[p] = id;
        if (id >= 0) off[id + 1]++;
    }
    for (int64_t e = 0; e < E; e++) off[e + 1] += off[e];
    const int64_t V = off[E]; /* pairs that reach an expert */
    {
        int64_t *fill = calloc((size_t) (E + 1), sizeof(int64_t));
        if (!fill) {
            free(local), free(off), free(order), free(slot);
            return sipu_fail(SIPU_ERR_OUT_OF_MEMORY, "%s: no memory", fn);
        }
        for (int64_t p = 0; p < P; p++) {
            slot[p] = -1;
            if (local[p] >= 0) {
                int64_t at = off[local[p]] + fill[local[p]]++;
                order[at] = p;
                slot[p] = at;
            }
        }
        free(fill);
    }
    const int64_t KH = (H + QB - 1) / QB, KI = (I + QB - 1) / QB;
    const int threads = sipu_threads();
    const sipu_vtable *vt = sipu_vt();
    /* bf16 without scales: the first GEMM takes the bf16 rows as they are (exact) so it can use bf16 tiles */
    const bool bf = !fp8 && t == SIPU_BF16;
    float *x = bf ? NULL : sipu_alloc_scratch((size_t) (V * H + 1) * sizeof(float)), *h1 = sipu_alloc_scratch((size_t) (V * 2 * I + 1) * sizeof(float));
    float *h2 = sipu_alloc_scratch((size_t) (V * I + 1) * sizeof(float)), *h3 = sipu_alloc_scratch((size_t) (V * H + 1) * sizeof(float));
    float *xs = fp8 ? malloc((size_t) (V * KH + 1) * sizeof(float)) : NULL, *hs = fp8 ? malloc((size_t) (V * KI + 1) * sizeof(float)) : NULL;
    float *scratch = malloc((size_t) threads * (size_t) ((H > I ? H : I) + 1) * sizeof(float));
    float *sums = malloc((size_t) threads * (size_t) (H + 1) * sizeof(float));
    uint16_t *xb = bf ? sipu_alloc_scratch((size_t) (V * H + 1) * sizeof(uint16_t)) : NULL;
    if ((bf ? !xb : !x) || !h1 || !h2 || !h3 || (fp8 && (!xs || !hs)) || !scratch || !sums) {
        st = sipu_fail(SIPU_ERR_OUT_OF_MEMORY, "%s: no memory for %lld expert rows of %lld", fn, (long long) V, (long long) H);
        goto done;
    }
    const int hi = sipu_itemsize(t);
    const float *tw = topk_weights->data;
    #pragma omp parallel for num_threads(threads) if (V * H > 65536)
    for (int64_t r = 0; r < V; r++) {
        int64_t tok = order[r] / K;
        const char *row = (const char *) hidden->data + tok * hidden->strides[0] * hi;
        if (bf && hidden->strides[1] == 1) {
            memcpy(xb + r * H, row, (size_t) H * sizeof(uint16_t));
        } else if (bf) {
            for (int64_t c = 0; c < H; c++) xb[r * H + c] = ((const uint16_t *) row)[c * hidden->strides[1]];
        } else {
            for (int64_t c = 0; c < H; c++) x[r * H + c] = load_f32(row + c * hidden->strides[1] * hi, t);
            if (fp8) quant_row(x + r * H, H, xs + r * KH);
        }
    }
    weights g1 = {w1, fp8 ? w1_scale : NULL, 2 * I, H}, g2 = {w2, fp8 ? w2_scale : NULL, H, I};
    if (fp8) gemm_experts(&g1, off, E, x, xs, h1, scratch);
    else if ((st = gemm_experts_dense(&g1, off, E, bf ? (const void *) xb : (const void *) x, bf ? SIPU_BF16 : SIPU_F32, h1, fn))) goto done;
    #pragma omp parallel for num_threads(threads) if (V * I > 65536)
    for (int64_t r = 0; r < V; r++) {
        int64_t p = order[r];
        float *gu = h1 + r * 2 * I;
        if (apply_router_weight_on_input) vt->scale_f32(2 * I, gu, tw[(p / K) * topk_weights->strides[0] + (p % K) * topk_weights->strides[1]]);
        vt->silu_mul(SIPU_F32, I, gu, h2 + r * I);
        if (fp8) quant_row(h2 + r * I, I, hs + r * KI);
    }
    /* h2 is fp32 (not bf16-exact): split exactly for the AMX tiles, or multiplied in fp32 */
    if (fp8) gemm_experts(&g2, off, E, h2, hs, h3, scratch);
    else if (!(bf && sipu_amx() && gemm2_split(&g2, off, E, h2, h3, sipu_threads_for(2.0 * (double) V * (double) H * (double) I)))
             && (st = gemm_experts_dense(&g2, off, E, h2, SIPU_F32, h3, fn)))
        goto done;
    /* The only writes to hidden_states: per token, the slots in order, one rounding at the store. */
    #pragma omp parallel for num_threads(threads) if (T * K * H > 65536)
    for (int64_t tok = 0; tok < T; tok++) {
        float *sum = sums + (size_t) thread_id() * (size_t) (H + 1);
        for (int64_t c = 0; c < H; c++) sum[c] = 0;
        for (int64_t k = 0; k < K; k++) {
            int64_t r = slot[tok * K + k];
            if (r < 0) continue;
            float w = apply_router_weight_on_input ? 1.0f : tw[tok * topk_weights->strides[0] + k * topk_weights->strides[1]];
            for (int64_t c = 0; c < H; c++) sum[c] += h3[r * H + c] * w;
        }
        char *row = (char *) hidden->data + tok * hidden->strides[0] * hi;
        if (hidden->strides[1] == 1) vt->row_from_f32(t, H, sum, row);
        else
            for (int64_t c = 0; c < H; c++) store_f32(row + c * hidden->strides[1] * hi, t, sum[c]);
    }
    st = SIPU_OK;
done:
    free(local), free(off), free(order), free(slot);
    free(x), free(h1), free(h2), free(h3), free(xs), free(hs), free(scratch), free(sums), free(xb);
    return st;
}
