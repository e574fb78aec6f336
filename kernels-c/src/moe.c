/* MoE routing and reduction: moe_sum, topk_softmax, DeepSeek's fused grouped top-k, moe_align_block_size. */
#include "convert.h"
#include "internal.h"

#include <math.h>
#include <omp.h>
#include <stdlib.h>

static bool contiguous(const sipu_tensor *t) {
    int64_t expect = 1;
    for (int d = t->ndim - 1; d >= 0; d--) {
        if (t->sizes[d] != 1 && t->strides[d] != expect) return false;
        expect *= t->sizes[d];
    }
    return true;
}

static float round_to_dtype(int32_t t, float v) {
    return t == SIPU_BF16 ? bf16_to_f32(f32_to_bf16(v)) : t == SIPU_F16 ? f16_to_f32(f32_to_f16(v)) : v;
}

SIPU_API sipu_status sipu_moe_sum(const sipu_tensor *in, const sipu_tensor *out) {
    sipu_status st;
    if ((st = sipu_check(in, "sipu_moe_sum", "input")) || (st = sipu_check(out, "sipu_moe_sum", "output"))) return st;
    if (in->ndim != 3 || out->ndim != 2 || out->sizes[0] != in->sizes[0] || out->sizes[1] != in->sizes[2]
        || in->dtype != out->dtype || !sipu_is_float(in->dtype) || !contiguous(in) || !contiguous(out))
        return sipu_fail(SIPU_ERR_INVALID_ARGUMENT, "sipu_moe_sum: expects contiguous input [M, K, H] and output [M, H] of one float dtype");
    int64_t M = in->sizes[0], K = in->sizes[1], H = in->sizes[2];
    int32_t t = in->dtype;
    int item = sipu_itemsize(t);
    /* vLLM's kernel adds in the storage dtype for K in {2, 3, 4}; other K go through torch.sum (fp32). */
    bool stepwise = K >= 2 && K <= 4;
    #pragma omp parallel for num_threads(sipu_threads()) if (M * K * H > 65536)
    for (int64_t m = 0; m < M; m++)
        for (int64_t h = 0; h < H; h++) {
            float acc = 0;
            for (int64_t k = 0; k < K; k++) {
                acc += load_f32((const char *) in->data + ((m * K + k) * H + h) * item, t);
                if (stepwise) acc = round_to_dtype(t, acc);
            }
            store_f32((char *) out->data + (m * H + h) * item, t, acc);
        }
    return SIPU_OK;
}

SIPU_API sipu_status sipu_topk_softmax(const sipu_tensor *w, const sipu_tensor *ids, const sipu_tensor *tei, const sipu_tensor *g) {
    sipu_status st;
    const char *fn = "sipu_topk_softmax";
    if ((st = sipu_check(w, fn, "topk_weights")) || (st = sipu_check(ids, fn, "topk_indices")) || (st = sipu_check(tei, fn, "token_expert_indices"))
        || (st = sipu_check(g, fn, "gating_output")) || (st = sipu_check_same_shape(ids, w, fn, "topk_indices"))
        || (st = sipu_check_same_shape(tei, w, fn, "token_expert_indices")))
        return st;
    if (g->ndim != 2 || w->ndim != 2 || w->sizes[0] != g->sizes[0] || w->sizes[1] > g->sizes[1] || w->dtype != SIPU_F32
        || !sipu_is_int(ids->dtype) || !sipu_is_int(tei->dtype) || !sipu_is_float(g->dtype) || !contiguous(g) || !contiguous(w)
        || !contiguous(ids) || !contiguous(tei))
        return sipu_fail(SIPU_ERR_INVALID_ARGUMENT, "%s: expects gating [M, E], float32 weights and integer indices [M, K] with K <= E", fn);
    int64_t M = g->sizes[0], E = g->sizes[1], K = w->sizes[1];
    int gi = sipu_itemsize(g->dtype), ii = sipu_itemsize(ids->dtype), ti = sipu_itemsize(tei->dtype);
    float *p = malloc((size_t) (E + 1) * sizeof(float));
    if (!p) return sipu_fail(SIPU_ERR_OUT_OF_MEMORY, "%s: no memory", fn);
    for (int64_t m = 0; m < M; m++) {
        float mx = -INFINITY, z = 0;
        for (int64_t e = 0; e < E; e++) mx = fmaxf(mx, load_f32((const char *) g->data + (m * E + e) * gi, g->dtype));
        for (int64_t e = 0; e < E; e++) z += p[e] = expf(load_f32((const char *) g->data + (m * E + e) * gi, g->dtype) - mx);
        for (int64_t e = 0; e < E; e++) p[e] *= 1.0f / z;
        for (int64_t k = 0; k < K; k++) {
            int64_t best = -1;
            for (int64_t e = 0; e < E; e++)
                if (p[e] >= 0 && (best < 0 || p[e] > p[best])) best = e;
            /* NaN probabilities (a NaN logit) are never the best: take the lowest expert not taken yet. */
            for (int64_t e = 0; best < 0; e++)
                if (p[e] != -1.0f) best = e;
            ((float *) w->data)[m * K + k] = p[best];
            store_i64((char *) ids->data + (m * K + k) * ii, ids->dtype, best);
            store_i64((char *) tei->data + (m * K + k) * ti, tei->dtype, k * M + m);
            p[best] = -1.0f;   /* taken */
        }
    }
    free(p);
    return SIPU_OK;
}

/* Index of the best value among v[0..n) not yet taken, ties to the lower index; -1 if none is
 * finite (non-finite values never qualify: SEMANTICS.md §9.3). */
static int64_t argmax_free(const float *v, const bool *taken, int64_t n) {
    int64_t best = -1;
    for (int64_t i = 0; i < n; i++)
        if (!taken[i] && isfinite(v[i]) && (best < 0 || v[i] > v[best])) best = i;
    return best;
}

/*
 * Offers expert e of value v to the best-first list ids/vals of m <= k entries and returns its new
 * length. Experts come in ascending order, so a value equal to one already listed goes after it:
 * the list is what repeated arg-max picks with ties to the lower index would give.
 */
static int64_t offer_best(int64_t *ids, float *vals, int64_t m, int64_t k, int64_t e, float v) {
    if (m == k && !(v > vals[k - 1])) return m;
    int64_t p = m < k ? m++ : k - 1;
    for (; p > 0 && v > vals[p - 1]; p--) {
        ids[p] = ids[p - 1];
        vals[p] = vals[p - 1];
    }
    ids[p] = e;
    vals[p] = v;
    return m;
}

SIPU_API sipu_status sipu_grouped_topk(const sipu_tensor *w, const sipu_tensor *ids, const sipu_tensor *scores, const sipu_tensor *bias,
                                       int64_t n_group, int64_t topk_group, int32_t renormalize, double rsf, int32_t scoring_func) {
    sipu_status st;
    const char *fn = "sipu_grouped_topk";
    if ((st = sipu_check(w, fn, "topk_weights")) || (st = sipu_check(ids, fn, "topk_ids")) || (st = sipu_check(scores, fn, "scores"))
        || (st = sipu_check(bias, fn, "bias")))
        return st;
    if (scores->ndim != 2 || !sipu_is_float(scores->dtype) || !contiguous(scores))
        return sipu_fail(SIPU_ERR_INVALID_ARGUMENT, "%s: scores must be a contiguous float [T, E]", fn);
    int64_t T = scores->sizes[0], E = scores->sizes[1], K = w->ndim == 2 ? w->sizes[1] : -1;
    if (n_group <= 0 || E % n_group) return sipu_fail(SIPU_ERR_INVALID_ARGUMENT, "%s: %lld experts are not a multiple of n_group %lld", fn, (long long) E, (long long) n_group);
    int64_t gsize = E / n_group;
    if (topk_group <= 0 || topk_group > n_group) return sipu_fail(SIPU_ERR_INVALID_ARGUMENT, "%s: topk_group %lld must be in [1, %lld]", fn, (long long) topk_group, (long long) n_group);
    if (K <= 0 || K > topk_group * gsize || w->sizes[0] != T || w->dtype != SIPU_F32 || ids->ndim != 2 || ids->sizes[0] != T || ids->sizes[1] != K
        || !sipu_is_int(ids->dtype) || !contiguous(w) || !contiguous(ids))
        return sipu_fail(SIPU_ERR_INVALID_ARGUMENT, "%s: expects float32 weights and integer ids [T, k] with 0 < k <= topk_group * E / n_group", fn);
    if (bias->ndim != 1 || bias->sizes[0] != E || !sipu_is_float(bias->dtype))
        return sipu_fail(SIPU_ERR_INVALID_ARGUMENT, "%s: bias must be a float [%lld]", fn, (long long) E);
    if (scoring_func != 0 && scoring_func != 1) return sipu_fail(SIPU_ERR_INVALID_ARGUMENT, "%s: scoring_func must be 0 (none) or 1 (sigmoid)", fn);
    int si = sipu_itemsize(scores->dtype), bi = sipu_itemsize(bias->dtype), ii = sipu_itemsize(ids->dtype);
    /* per thread: sigmoid scores, choice values, group scores, the picked experts' values, the picked
     * experts and groups, taken flags of the groups */
    const int threads = sipu_threads();
    const int64_t per_f = 2 * E + 2 * n_group + K, per_b = n_group;
    float *buf = malloc(((size_t) threads * (size_t) per_f + (size_t) E) * sizeof(float));
    int64_t *picked_all = malloc((size_t) threads * (size_t) (K + n_group) * sizeof(int64_t));
    bool *taken_all = malloc((size_t) threads * (size_t) per_b);
    if (!buf || !taken_all || !picked_all) {
        free(buf);
        free(taken_all);
        free(picked_all);
        return sipu_fail(SIPU_ERR_OUT_OF_MEMORY, "%s: no memory", fn);
    }
    float *bias_f = buf + threads * per_f; /* the bias in fp32, shared */
    for (int64_t e = 0; e < E; e++) bias_f[e] = load_f32((const char *) bias->data + e * bias->strides[0] * bi, bias->dtype);
    #pragma omp parallel num_threads(threads) if (T > 1 && T * E >= 4096)
    {
        int me = omp_get_thread_num();
        float *s = buf + me * per_f, *choice = s + E, *gscore = choice + E, *gsecond = gscore + n_group, *pval = gsecond + n_group;
        int64_t *picked = picked_all + me * (K + n_group), *groups = picked + K;
        bool *gtaken = taken_all + me * per_b;
        #pragma omp for schedule(static)
        for (int64_t t = 0; t < T; t++) {
            const float *x = s;
            if (scores->dtype == SIPU_F32) x = (const float *) scores->data + t * E;
            else for (int64_t e = 0; e < E; e++) s[e] = load_f32((const char *) scores->data + (t * E + e) * si, scores->dtype);
            for (int64_t e = 0; e < E; e++) {
                s[e] = scoring_func == 1 ? 1.0f / (1.0f + expf(-x[e])) : x[e];
                choice[e] = s[e] + bias_f[e];
            }
            /* A group's score: the sum of its two best choice values (a repeated maximum counts twice). */
            for (int64_t gr = 0; gr < n_group; gr++) {
                float b1 = -INFINITY, b2 = -INFINITY;
                for (int64_t e = gr * gsize; e < (gr + 1) * gsize; e++) {
                    float v = choice[e];
                    if (v > b1) { b2 = b1; b1 = v; }
                    else if (v > b2) b2 = v;
                }
                gscore[gr] = gsize == 1 ? b1 : b1 + b2;
                gsecond[gr] = isfinite(b1) && isfinite(b2) ? b2 : -INFINITY;
            }
            int64_t finite = 0;
            for (int64_t gr = 0; gr < n_group; gr++) finite += isfinite(gscore[gr]);
            if (finite < topk_group) {
                /* fewer groups qualify than are to be kept: the row is experts 0..k-1 at 1/k each (OPS.md) */
                for (int64_t k = 0; k < K; k++) {
                    store_i64((char *) ids->data + (t * K + k) * ii, ids->dtype, k);
                    ((float *) w->data)[t * K + k] = 1.0f / (float) K;
                }
                continue;
            }
            memset(gtaken, 0, (size_t) per_b);
            int64_t ng = 0;
            for (int64_t j = 0; j < topk_group; j++) {
                int64_t gbest = argmax_free(gscore, gtaken, n_group);
                if (gbest < 0) break;
                gtaken[gbest] = true;
                groups[ng++] = gbest;
            }
            /* Experts are searched only inside the chosen groups, in ascending expert order, so the
             * ties and the result are those of a search over all experts with the others masked. */
            for (int64_t a = 1; a < ng; a++)
                for (int64_t b = a; b > 0 && groups[b - 1] > groups[b]; b--) {
                    int64_t tmp = groups[b];
                    groups[b] = groups[b - 1];
                    groups[b - 1] = tmp;
                }
            /* The chosen groups' two best are 2 ng finite candidates when their second bests are
             * finite, so for 2 ng >= k the k-th best is at least the least of those: smaller values
             * cannot enter and are not offered (equal ones are, for the ties). */
            float floor_k = -INFINITY;
            if (2 * ng >= K) {
                floor_k = INFINITY;
                for (int64_t j = 0; j < ng; j++) floor_k = gsecond[groups[j]] < floor_k ? gsecond[groups[j]] : floor_k;
            }
            int64_t m = 0;
            for (int64_t j = 0; j < ng; j++)
                for (int64_t e = groups[j] * gsize; e < (groups[j] + 1) * gsize; e++)
                    if (isfinite(choice[e]) && choice[e] >= floor_k) m = offer_best(picked, pval, m, K, e, choice[e]);
            for (int64_t k = m; k < K; k++) picked[k] = k; /* no finite candidate left: expert k, as the CUDA kernel does */
            float sum = 0;
            for (int64_t k = 0; k < K; k++) {
                store_i64((char *) ids->data + (t * K + k) * ii, ids->dtype, picked[k]);
                sum += s[picked[k]];
            }
            for (int64_t k = 0; k < K; k++) {
                float wv = renormalize ? s[picked[k]] / (sum + 1e-20f) : s[picked[k]];
                ((float *) w->data)[t * K + k] = wv * (float) rsf;
            }
        }
    }
    free(buf);
    free(taken_all);
    free(picked_all);
    return SIPU_OK;
}

SIPU_API sipu_status sipu_moe_align_block_size(const sipu_tensor *topk_ids, int64_t num_experts, int64_t block_size,
                                               const sipu_tensor *sorted, const sipu_tensor *experts, const sipu_tensor *post) {
    sipu_status st;
    const char *fn = "sipu_moe_align_block_size";
    if ((st = sipu_check(topk_ids, fn, "topk_ids")) || (st = sipu_check(sorted, fn, "sorted_token_ids"))
        || (st = sipu_check(experts, fn, "experts_ids")) || (st = sipu_check(post, fn, "num_tokens_post_pad")))
        return st;
    if (num_experts <= 0 || block_size <= 0) return sipu_fail(SIPU_ERR_INVALID_ARGUMENT, "%s: num_experts and block_size must be positive", fn);
    if (!sipu_is_int(topk_ids->dtype) || !contiguous(topk_ids) || sorted->ndim != 1 || experts->ndim != 1 || sipu_numel(post) < 1
        || sorted->dtype != SIPU_I32 || experts->dtype != SIPU_I32 || post->dtype != SIPU_I32 || !contiguous(sorted) || !contiguous(experts))
        return sipu_fail(SIPU_ERR_INVALID_ARGUMENT, "%s: expects integer topk_ids and int32 1-D outputs", fn);
    int64_t numel = sipu_numel(topk_ids), L = sorted->sizes[0], NB = experts->sizes[0];
    int ti = sipu_itemsize(topk_ids->dtype);
    int64_t *count = calloc((size_t) num_experts + 1, sizeof(int64_t));
    if (!count) return sipu_fail(SIPU_ERR_OUT_OF_MEMORY, "%s: no memory", fn);
    for (int64_t i = 0; i < numel; i++) {
        int64_t e = load_i64((const char *) topk_ids->data + i * ti, topk_ids->dtype);
        if (e >= 0 && e < num_experts) count[e]++;
    }
    int64_t total = 0;
    for (int64_t e = 0; e < num_experts; e++) total += (count[e] + block_size - 1) / block_size * block_size;
    if (total > L || total / block_size > NB) {
        free(count);
        return sipu_fail(SIPU_ERR_INVALID_ARGUMENT, "%s: the padded layout needs %lld slots and %lld blocks, buffers hold %lld and %lld",
                         fn, (long long) total, (long long) (total / block_size), (long long) L, (long long) NB);
    }
    int32_t *out = sorted->data, *eids = experts->data;
    for (int64_t i = 0; i < L; i++) out[i] = (int32_t) numel;
    for (int64_t b = 0; b < NB; b++) eids[b] = 0;
    int64_t *next = malloc(((size_t) num_experts + 1) * sizeof(int64_t));
    if (!next) {
        free(count);
        return sipu_fail(SIPU_ERR_OUT_OF_MEMORY, "%s: no memory", fn);
    }
    int64_t pos = 0;
    for (int64_t e = 0; e < num_experts; e++) {
        int64_t padded = (count[e] + block_size - 1) / block_size * block_size;
        next[e] = pos;
        for (int64_t b = pos / block_size; b < (pos + padded) / block_size; b++) eids[b] = (int32_t) e;
        pos += padded;
    }
    for (int64_t i = 0; i < numel; i++) {
        int64_t e = load_i64((const char *) topk_ids->data + i * ti, topk_ids->dtype);
        if (e >= 0 && e < num_experts) out[next[e]++] = (int32_t) i;
    }
    *(int32_t *) post->data = (int32_t) total;
    free(next);
    free(count);
    return SIPU_OK;
}
