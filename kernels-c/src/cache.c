/* vLLM's concat_and_cache_mla: the latent KV entry [kv_c | k_pe] of each token into a paged cache. */
#include "convert.h"
#include "internal.h"

SIPU_API sipu_status sipu_concat_and_cache_mla(const sipu_tensor *kv_c, const sipu_tensor *k_pe, const sipu_tensor *cache,
                                               const sipu_tensor *slots, int32_t fp8, const sipu_tensor *scale) {
    sipu_status st;
    const char *fn = "sipu_concat_and_cache_mla";
    if ((st = sipu_check(kv_c, fn, "kv_c")) || (st = sipu_check(k_pe, fn, "k_pe")) || (st = sipu_check(cache, fn, "kv_cache"))
        || (st = sipu_check(slots, fn, "slot_mapping")) || (fp8 && (st = sipu_check(scale, fn, "scale"))))
        return st;
    if (kv_c->ndim != 2 || k_pe->ndim != 2 || cache->ndim != 3 || slots->ndim != 1 || !sipu_is_int(slots->dtype))
        return sipu_fail(SIPU_ERR_INVALID_ARGUMENT, "%s: expects kv_c [N, L], k_pe [N, R], kv_cache [blocks, block_size, L + R], slot_mapping [n]", fn);
    int64_t n = slots->sizes[0], L = kv_c->sizes[1], R = k_pe->sizes[1], blocks = cache->sizes[0], bs = cache->sizes[1];
    if (n > kv_c->sizes[0] || n > k_pe->sizes[0] || cache->sizes[2] != L + R)
        return sipu_fail(SIPU_ERR_INVALID_ARGUMENT, "%s: %lld slots for %lld tokens, or cache entry %lld != %lld + %lld", fn,
                         (long long) n, (long long) kv_c->sizes[0], (long long) cache->sizes[2], (long long) L, (long long) R);
    if ((L > 1 && kv_c->strides[1] != 1) || (R > 1 && k_pe->strides[1] != 1) || (L + R > 1 && cache->strides[2] != 1))
        return sipu_fail(SIPU_ERR_INVALID_ARGUMENT, "%s: last dimensions must be contiguous", fn);
    if (fp8 ? (cache->dtype != SIPU_U8 && cache->dtype != SIPU_F8E4M3FN) || !sipu_is_float(scale->dtype) || sipu_numel(scale) < 1
            : cache->dtype != kv_c->dtype || k_pe->dtype != kv_c->dtype)
        return sipu_fail(SIPU_ERR_UNSUPPORTED_DTYPE, "%s: the cache dtype %s does not fit kv_cache_dtype %s", fn,
                         sipu_dtype_name(cache->dtype), fp8 ? "fp8" : "auto");
    int si = sipu_itemsize(slots->dtype);
    for (int64_t t = 0; t < n; t++) {
        int64_t s = load_i64((const char *) slots->data + t * slots->strides[0] * si, slots->dtype);
        if (s >= blocks * bs)
            return sipu_fail(SIPU_ERR_INDEX_OUT_OF_RANGE, "%s: slot_mapping[%lld] = %lld is beyond the cache's %lld slots", fn,
                             (long long) t, (long long) s, (long long) (blocks * bs));
    }
    float sc = fp8 ? load_f32(scale->data, scale->dtype) : 1.0f;
    int ki = sipu_itemsize(kv_c->dtype), ci = sipu_itemsize(cache->dtype);
    for (int64_t t = 0; t < n; t++) {
        int64_t s = load_i64((const char *) slots->data + t * slots->strides[0] * si, slots->dtype);
        if (s < 0) continue;   /* padding token */
        char *dst = (char *) cache->data + ((s / bs) * cache->strides[0] + (s % bs) * cache->strides[1]) * ci;
        const char *a = (const char *) kv_c->data + t * kv_c->strides[0] * ki, *b = (const char *) k_pe->data + t * k_pe->strides[0] * ki;
        if (!fp8) {
            memcpy(dst, a, (size_t) (L * ki));
            memcpy(dst + L * ci, b, (size_t) (R * ki));
        } else {
            for (int64_t i = 0; i < L; i++) dst[i] = (char) f32_to_e4m3_sat(load_f32(a + i * ki, kv_c->dtype) / sc);
            for (int64_t i = 0; i < R; i++) dst[L + i] = (char) f32_to_e4m3_sat(load_f32(b + i * ki, kv_c->dtype) / sc);
        }
    }
    return SIPU_OK;
}
