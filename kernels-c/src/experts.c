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
#include "gemm_kernels.h"
#include "internal.h"

#include <math.h>
#include <stdlib.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#define QB 128 /* quantization block */
#define NB 32  /* weight rows per task */

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
        #ifdef _OPENMP
        float *wrow = scratch + (size_t) omp_get_thread_num() * (size_t) g->cols;
        #else
        float *wrow = scratch;
        #endif
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
    float *x = malloc((size_t) (V * H + 1) * sizeof(float)), *h1 = malloc((size_t) (V * 2 * I + 1) * sizeof(float));
    float *h2 = malloc((size_t) (V * I + 1) * sizeof(float)), *h3 = malloc((size_t) (V * H + 1) * sizeof(float));
    float *xs = fp8 ? malloc((size_t) (V * KH + 1) * sizeof(float)) : NULL, *hs = fp8 ? malloc((size_t) (V * KI + 1) * sizeof(float)) : NULL;
    float *scratch = malloc((size_t) threads * (size_t) ((H > I ? H : I) + 1) * sizeof(float));
    float *sums = malloc((size_t) threads * (size_t) (H + 1) * sizeof(float));
    uint16_t *xb = NULL;
    if (!x || !h1 || !h2 || !h3 || (fp8 && (!xs || !hs)) || !scratch || !sums) {
        st = sipu_fail(SIPU_ERR_OUT_OF_MEMORY, "%s: no memory for %lld expert rows of %lld", fn, (long long) V, (long long) H);
        goto done;
    }
    const int hi = sipu_itemsize(t);
    const float *tw = topk_weights->data;
    #pragma omp parallel for num_threads(threads) if (V * H > 65536)
    for (int64_t r = 0; r < V; r++) {
        int64_t tok = order[r] / K;
        const char *row = (const char *) hidden->data + tok * hidden->strides[0] * hi;
        for (int64_t c = 0; c < H; c++) x[r * H + c] = load_f32(row + c * hidden->strides[1] * hi, t);
        if (fp8) quant_row(x + r * H, H, xs + r * KH);
    }
    weights g1 = {w1, fp8 ? w1_scale : NULL, 2 * I, H}, g2 = {w2, fp8 ? w2_scale : NULL, H, I};
    /* bf16: the first GEMM takes bf16 rows (exactly the fp32 values held here) so it can use bf16 dots */
    if (!fp8 && t == SIPU_BF16) {
        xb = malloc((size_t) (V * H + 1) * sizeof(uint16_t));
        if (!xb) {
            st = sipu_fail(SIPU_ERR_OUT_OF_MEMORY, "%s: no memory for %lld expert rows of %lld", fn, (long long) V, (long long) H);
            goto done;
        }
        for (int64_t i = 0; i < V * H; i++) xb[i] = f32_to_bf16(x[i]);
    }
    if (fp8) gemm_experts(&g1, off, E, x, xs, h1, scratch);
    else if ((st = gemm_experts_dense(&g1, off, E, xb ? (const void *) xb : (const void *) x, xb ? SIPU_BF16 : SIPU_F32, h1, fn))) goto done;
    #pragma omp parallel for num_threads(threads) if (V * I > 65536)
    for (int64_t r = 0; r < V; r++) {
        int64_t p = order[r];
        float w = apply_router_weight_on_input ? tw[(p / K) * topk_weights->strides[0] + (p % K) * topk_weights->strides[1]] : 1.0f;
        for (int64_t j = 0; j < I; j++) {
            float g = h1[r * 2 * I + j] * w, u = h1[r * 2 * I + I + j] * w;
            h2[r * I + j] = g / (1.0f + expf(-g)) * u;
        }
        if (fp8) quant_row(h2 + r * I, I, hs + r * KI);
    }
    /* h2 is fp32 (not bf16-exact), so the second GEMM multiplies it in fp32 */
    if (fp8) gemm_experts(&g2, off, E, h2, hs, h3, scratch);
    else if ((st = gemm_experts_dense(&g2, off, E, h2, SIPU_F32, h3, fn))) goto done;
    /* The only writes to hidden_states: per token, the slots in order, one rounding at the store. */
    #pragma omp parallel for num_threads(threads) if (T * K * H > 65536)
    for (int64_t tok = 0; tok < T; tok++) {
        #ifdef _OPENMP
        float *sum = sums + (size_t) omp_get_thread_num() * (size_t) (H + 1);
        #else
        float *sum = sums;
        #endif
        for (int64_t c = 0; c < H; c++) sum[c] = 0;
        for (int64_t k = 0; k < K; k++) {
            int64_t r = slot[tok * K + k];
            if (r < 0) continue;
            float w = apply_router_weight_on_input ? 1.0f : tw[tok * topk_weights->strides[0] + k * topk_weights->strides[1]];
            for (int64_t c = 0; c < H; c++) sum[c] += h3[r * H + c] * w;
        }
        char *row = (char *) hidden->data + tok * hidden->strides[0] * hi;
        for (int64_t c = 0; c < H; c++) store_f32(row + c * hidden->strides[1] * hi, t, sum[c]);
    }
    st = SIPU_OK;
done:
    free(local), free(off), free(order), free(slot);
    free(x), free(h1), free(h2), free(h3), free(xs), free(hs), free(scratch), free(sums), free(xb);
    return st;
}
