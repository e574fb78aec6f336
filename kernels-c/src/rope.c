/* vLLM's rotary_embedding: neox pairs (i, i + rot/2) or GPT-J pairs (2i, 2i + 1), fp32 math, one rounding. */
#include "convert.h"
#include "internal.h"

#include <omp.h>
#include <stdlib.h>

/* A [T, H, D] view of query or key: element offsets of token t, head h. */
typedef struct { char *data; int32_t dtype; int64_t heads, token_stride, head_stride; } qk_view;

static sipu_status view_of(const sipu_tensor *x, int64_t T, int64_t D, const char *arg, qk_view *v) {
    sipu_status st = sipu_check(x, "sipu_rotary_embedding", arg);
    if (st) return st;
    if (x->dtype != SIPU_F32 && x->dtype != SIPU_BF16 && x->dtype != SIPU_F16)
        return sipu_fail(SIPU_ERR_UNSUPPORTED_DTYPE, "sipu_rotary_embedding: %s must be float32, float16 or bfloat16", arg);
    if ((x->ndim != 2 && x->ndim != 3) || x->sizes[0] != T)
        return sipu_fail(SIPU_ERR_INVALID_ARGUMENT, "sipu_rotary_embedding: %s must be [T, heads * head_size] or [T, heads, head_size] with T = %lld", arg, (long long) T);
    int64_t last = x->sizes[x->ndim - 1];
    if (x->strides[x->ndim - 1] != 1 && last > 1) return sipu_fail(SIPU_ERR_INVALID_ARGUMENT, "sipu_rotary_embedding: %s last dimension must be contiguous", arg);
    if (x->ndim == 3) {
        if (last != D) return sipu_fail(SIPU_ERR_INVALID_ARGUMENT, "sipu_rotary_embedding: %s head size %lld != %lld", arg, (long long) last, (long long) D);
        v->heads = x->sizes[1];
        v->head_stride = x->strides[1];
    } else {
        if (last % D) return sipu_fail(SIPU_ERR_INVALID_ARGUMENT, "sipu_rotary_embedding: %s width %lld is not a multiple of head_size %lld", arg, (long long) last, (long long) D);
        v->heads = last / D;
        v->head_stride = D;
    }
    v->data = x->data;
    v->dtype = x->dtype;
    v->token_stride = x->strides[0];
    return SIPU_OK;
}

/* Rotates token t's heads; narrow dtypes go through fp32 staging (one rounding on the way back). */
static void rotate(const qk_view *v, int64_t t, int64_t rot, const float *cs, int neox, float *stage) {
    const sipu_vtable *vt = sipu_vt();
    int item = sipu_itemsize(v->dtype);
    for (int64_t h = 0; h < v->heads; h++) {
        char *base = v->data + (t * v->token_stride + h * v->head_stride) * item;
        if (v->dtype == SIPU_F32) {
            vt->rope_f32(rot / 2, (float *) base, cs, neox);
        } else {
            vt->row_to_f32(v->dtype, rot, base, stage);
            vt->rope_f32(rot / 2, stage, cs, neox);
            vt->row_from_f32(v->dtype, rot, stage, base);
        }
    }
}

SIPU_API sipu_status sipu_rotary_embedding(const sipu_tensor *positions, const sipu_tensor *query, const sipu_tensor *key,
                                           int64_t head_size, const sipu_tensor *cache, int32_t is_neox) {
    sipu_status st;
    if ((st = sipu_check(positions, "sipu_rotary_embedding", "positions")) || (st = sipu_check(cache, "sipu_rotary_embedding", "cos_sin_cache")))
        return st;
    if (positions->ndim != 1 || (positions->dtype != SIPU_I64 && positions->dtype != SIPU_I32))
        return sipu_fail(SIPU_ERR_INVALID_ARGUMENT, "sipu_rotary_embedding: positions must be a 1-D int64 or int32 tensor");
    if (cache->ndim != 2 || cache->sizes[1] % 2 || !sipu_is_float(cache->dtype))
        return sipu_fail(SIPU_ERR_INVALID_ARGUMENT, "sipu_rotary_embedding: cos_sin_cache must be a float [max_position, rot_dim] with even rot_dim");
    int64_t T = positions->sizes[0], P = cache->sizes[0], rot = cache->sizes[1];
    if (head_size <= 0 || rot > head_size)
        return sipu_fail(SIPU_ERR_INVALID_ARGUMENT, "sipu_rotary_embedding: rot_dim %lld must be in (0, head_size %lld]", (long long) rot, (long long) head_size);
    qk_view q, k;
    if ((st = view_of(query, T, head_size, "query", &q))) return st;
    if (key && (st = view_of(key, T, head_size, "key", &k))) return st;
    /* Every position is checked before the first store. */
    const char *pos = positions->data;
    int pitem = sipu_itemsize(positions->dtype);
    for (int64_t t = 0; t < T; t++) {
        int64_t p = load_i64(pos + t * positions->strides[0] * pitem, positions->dtype);
        if (p < 0 || p >= P)
            return sipu_fail(SIPU_ERR_INDEX_OUT_OF_RANGE, "sipu_rotary_embedding: positions[%lld] = %lld is outside the cache's %lld rows",
                             (long long) t, (long long) p, (long long) P);
    }
    int citem = sipu_itemsize(cache->dtype);
    const int threads = sipu_threads();
    bool par = T * q.heads * rot > 65536;
    /* per thread: the position's cos|sin row and a staging row for narrow dtypes */
    float *scratch = malloc((size_t) (par ? threads : 1) * 2 * (size_t) rot * sizeof(float));
    if (!scratch) return sipu_fail(SIPU_ERR_OUT_OF_MEMORY, "sipu_rotary_embedding: no memory for rot_dim %lld rows", (long long) rot);
    #pragma omp parallel num_threads(threads) if (par)
    {
        float *buf = scratch + (size_t) omp_get_thread_num() * 2 * (size_t) rot, *stage = buf + rot;
        #pragma omp for schedule(static)
        for (int64_t t = 0; t < T; t++) {
            int64_t p = load_i64(pos + t * positions->strides[0] * pitem, positions->dtype);
            const char *row = (const char *) cache->data + p * cache->strides[0] * citem;
            for (int64_t i = 0; i < rot; i++) buf[i] = load_f32(row + i * cache->strides[1] * citem, cache->dtype);
            rotate(&q, t, rot, buf, is_neox, stage);
            if (key) rotate(&k, t, rot, buf, is_neox, stage);
        }
    }
    free(scratch);
    return SIPU_OK;
}
