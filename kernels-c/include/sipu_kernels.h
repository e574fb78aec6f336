/*
 * sipu_kernels.h - the one public C ABI of the SIPU device.
 *
 * Everything the Java side (ops-sipu, through jextract bindings in ffm-bindings) calls is declared
 * here. A real SIPU SDK can replace libsipu_kernels behind this header: device memory is only ever
 * obtained from sipu_malloc and moved with sipu_memcpy, kernels only see sipu_tensor descriptors.
 *
 * Conventions
 * - Every kernel returns sipu_status: SIPU_OK, or an error code with a message readable through
 *   sipu_last_error() on the same thread. A kernel that fails writes nothing to its outputs
 *   (index-like inputs are validated in a pre-pass before the first store).
 * - Tensor descriptors carry sizes and strides in elements (strides may be 0 or overlap for inputs).
 *   data points at the tensor's first element (storage base + offset * itemsize).
 * - Broadcasting is resolved by the caller: an input descriptor already has the output's ndim and
 *   sizes, with stride 0 on broadcast dimensions.
 * - Floating point math of f16/bf16/f8 tensors is done in fp32 and rounded once to nearest even.
 */
#ifndef SIPU_KERNELS_H
#define SIPU_KERNELS_H

#include <stdint.h>
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

#define SIPU_MAX_DIMS 16

/* Element types; the numbering is shared with dev.sipu.api.DType.code(). */
typedef enum {
    SIPU_F64 = 0,
    SIPU_F32 = 1,
    SIPU_F16 = 2,
    SIPU_BF16 = 3,
    SIPU_F8E4M3FN = 4,
    SIPU_F8E5M2 = 5,
    SIPU_I64 = 6,
    SIPU_I32 = 7,
    SIPU_I16 = 8,
    SIPU_I8 = 9,
    SIPU_U8 = 10,
    SIPU_BOOL = 11
} sipu_dtype;

typedef enum {
    SIPU_OK = 0,
    SIPU_ERR_INVALID_ARGUMENT = 1,
    SIPU_ERR_INDEX_OUT_OF_RANGE = 2,
    SIPU_ERR_UNSUPPORTED_DTYPE = 3,
    SIPU_ERR_OUT_OF_MEMORY = 4,
    SIPU_ERR_INTERNAL = 5
} sipu_status_code;

typedef int32_t sipu_status;

typedef struct {
    void *data;
    int64_t sizes[SIPU_MAX_DIMS];
    int64_t strides[SIPU_MAX_DIMS];
    int32_t ndim;
    int32_t dtype;
} sipu_tensor;

/* SIMD paths, chosen once at load time from cpuid (SIPU_SIMD=scalar|avx2|avx512|avx512_bf16 forces a
 * lower one, and no AMX). sipu_simd_name() appends "+amx" when the bf16/fp8 GEMMs use AMX tiles. */
typedef enum {
    SIPU_SIMD_SCALAR = 0,
    SIPU_SIMD_AVX2 = 1,
    SIPU_SIMD_AVX512 = 2,
    SIPU_SIMD_AVX512_BF16 = 3
} sipu_simd_level;

/* ---- runtime ---------------------------------------------------------------------------- */
int32_t sipu_simd(void);
const char *sipu_simd_name(void);
void sipu_set_num_threads(int32_t n);
int32_t sipu_get_num_threads(void);
const char *sipu_last_error(void);
const char *sipu_version(void);

/* ---- device memory ---------------------------------------------------------------------- */
/* 64-byte aligned device allocation; NULL (with sipu_last_error set) when it cannot be had. */
void *sipu_malloc(int64_t bytes);
void sipu_free(void *ptr);
/* Host <-> device and device <-> device byte copies (non-overlapping). */
sipu_status sipu_memcpy_h2d(void *dst_device, const void *src_host, int64_t bytes);
sipu_status sipu_memcpy_d2h(void *dst_host, const void *src_device, int64_t bytes);
sipu_status sipu_memcpy_d2d(void *dst_device, const void *src_device, int64_t bytes);

/* ---- elementwise ------------------------------------------------------------------------ */
/* out[i] = value, converted to out's dtype (ints from ivalue, floats from fvalue, bool = fvalue != 0). */
sipu_status sipu_fill(const sipu_tensor *out, double fvalue, int64_t ivalue);
/* out[i] = start + i * step over the flat (contiguous) out; integer dtypes use istart/istep. */
sipu_status sipu_arange(const sipu_tensor *out, double start, double step, int64_t istart, int64_t istep);
/* dst[i] = cast(src[i]) with PyTorch's conversion rules; src already broadcast to dst's sizes. */
sipu_status sipu_copy(const sipu_tensor *dst, const sipu_tensor *src);

typedef enum {
    SIPU_BINARY_ADD = 0,          /* a + alpha * b */
    SIPU_BINARY_SUB = 1,          /* a - alpha * b */
    SIPU_BINARY_MUL = 2,
    SIPU_BINARY_DIV = 3,          /* true division */
    SIPU_BINARY_FLOOR_DIVIDE = 4, /* floor(a / b); integer division by zero is an error */
    SIPU_BINARY_POW = 5,          /* integer exponents must be >= 0 */
    SIPU_BINARY_BITWISE_AND = 6,
    SIPU_BINARY_BITWISE_OR = 7,
    SIPU_BINARY_EQ = 8,           /* comparisons store bool */
    SIPU_BINARY_LT = 9,
    SIPU_BINARY_LE = 10,
    SIPU_BINARY_GT = 11,
    SIPU_BINARY_GE = 12,
    SIPU_BINARY_RSUB = 13         /* b - alpha * a */
} sipu_binary_op;

/* out = a (op) b: both operands are converted to `common` (PyTorch's common dtype) and the op runs in
 * its compute type (fp32 for 16/8-bit floats, double for f64, int64 for integers and bool); the result
 * is stored as out's dtype. b == NULL uses bscalar. */
sipu_status sipu_binary(int32_t op, const sipu_tensor *out, const sipu_tensor *a, const sipu_tensor *b,
                        double bscalar, double alpha, int32_t common);

typedef enum {
    SIPU_UNARY_NEG = 0,
    SIPU_UNARY_SIGMOID = 1,
    SIPU_UNARY_SILU = 2,
    SIPU_UNARY_COS = 3,
    SIPU_UNARY_SIN = 4,
    SIPU_UNARY_RSQRT = 5,
    SIPU_UNARY_RECIPROCAL = 6,
    SIPU_UNARY_BITWISE_NOT = 7    /* integers and bool */
} sipu_unary_op;

/* out = op(in), computed in out's compute type (the input is converted first). */
sipu_status sipu_unary(int32_t op, const sipu_tensor *out, const sipu_tensor *in);

/* out = cond ? a : b (cond bool; a, b converted to out's dtype). */
sipu_status sipu_where(const sipu_tensor *out, const sipu_tensor *cond, const sipu_tensor *a, const sipu_tensor *b);
/* self[mask] = value (mask bool, broadcast to self); integer dtypes take ivalue. */
sipu_status sipu_masked_fill(const sipu_tensor *self, const sipu_tensor *mask, double fvalue, int64_t ivalue);
/* out = clamp(in, lo, hi) in out's compute type; NaN inputs stay NaN. */
sipu_status sipu_clamp(const sipu_tensor *out, const sipu_tensor *in, int32_t has_min, double lo, int32_t has_max, double hi);

/* ---- indexing ------------------------------------------------------------------------------ */
/* Advanced indexing (PyTorch's index kernel): `src` is the indexed tensor restrided to out's shape,
 * stride 0 on the dims the indices replace; indices[k] (int64 or int32, broadcast to out's shape)
 * picks along a dim of size sizes[k] and element stride strides[k] of the indexed tensor; negative
 * indices wrap when `wrap` is set (index, index_put_) and are errors otherwise (index_select,
 * embedding, gather, scatter_). Serves index, index_select, embedding and gather. All indices are checked before the
 * first store: SIPU_ERR_INDEX_OUT_OF_RANGE names the bad value. */
sipu_status sipu_index_gather(const sipu_tensor *out, const sipu_tensor *src, int32_t nindices,
                              const sipu_tensor *const *indices, const int64_t *sizes, const int64_t *strides,
                              int32_t wrap);
/* The reverse (index_put_, scatter_): dst restrided like src above, values of its shape and dtype;
 * accumulate adds (every duplicate index counts), else the last write wins. */
sipu_status sipu_index_scatter(const sipu_tensor *dst, const sipu_tensor *values, int32_t nindices,
                               const sipu_tensor *const *indices, const int64_t *sizes, const int64_t *strides,
                               int32_t wrap, int32_t accumulate);

/* ---- reductions over rows ----------------------------------------------------------------- */
typedef enum {
    SIPU_REDUCE_SUM = 0,
    SIPU_REDUCE_MEAN = 1,
    SIPU_REDUCE_AMAX = 2,    /* NaN propagates */
    SIPU_REDUCE_MAX = 3,     /* values and indices (first maximum, first NaN) */
    SIPU_REDUCE_ARGMAX = 4,
    SIPU_REDUCE_ANY = 5
} sipu_reduce_op;

/* out[r] = op(in[r, :]) for in [R, N] (any strides); `indices` (int64 [R]) only for MAX. Floating
 * sums accumulate in fp32 (double for f64), integer sums in int64. */
sipu_status sipu_reduce_rows(int32_t op, const sipu_tensor *out, const sipu_tensor *indices, const sipu_tensor *in);
/* Numerically stable softmax (or log-softmax) of each row of in [R, N] into out [R, N]. */
sipu_status sipu_softmax_rows(const sipu_tensor *out, const sipu_tensor *in, int32_t log);
/* Running sums of each row of in [R, N] into out [R, N] (accumulated in out's compute type). */
sipu_status sipu_cumsum_rows(const sipu_tensor *out, const sipu_tensor *in);

/* ---- matmul ----------------------------------------------------------------------------- */
/* out[b] = a[b] @ b[b] (+ bias broadcast over rows when bias != NULL). a [B?, M, K], b [B?, K, N],
 * out [B?, M, N] (ndim 2 or 3, any strides); same dtype for a, b, out, bias. fp32 accumulation for
 * floating types, int64 for integer types. */
sipu_status sipu_matmul(const sipu_tensor *out, const sipu_tensor *a, const sipu_tensor *b,
                        const sipu_tensor *bias);

/* ---- LLM fused ops ---------------------------------------------------------------------- */
/* vLLM _C::rms_norm: input [..., H] (last dim contiguous), weight [H], out contiguous. */
sipu_status sipu_rms_norm(const sipu_tensor *out, const sipu_tensor *input, const sipu_tensor *weight,
                          double epsilon);
/* vLLM _C::silu_and_mul: input [..., 2d] -> out [..., d]. */
sipu_status sipu_silu_and_mul(const sipu_tensor *out, const sipu_tensor *input);

/* vLLM _C::fused_add_rms_norm: z = input + residual in fp32; residual = round(z); input = rms_norm(z). */
sipu_status sipu_fused_add_rms_norm(const sipu_tensor *input, const sipu_tensor *residual, const sipu_tensor *weight,
                                    double epsilon);
/* vLLM _C::rotary_embedding on query/key viewed as [T, heads, head_size] (key may be NULL); positions
 * [T] int64 index rows of cos_sin_cache [max_pos, rot_dim] (checked before anything is written). */
sipu_status sipu_rotary_embedding(const sipu_tensor *positions, const sipu_tensor *query, const sipu_tensor *key,
                                  int64_t head_size, const sipu_tensor *cos_sin_cache, int32_t is_neox);

/* ---- quantization ----------------------------------------------------------------------- */
/* vLLM _C::dynamic_per_token_scaled_fp8_quant on rows [T, H]: e4m3 out, fp32 scale [T] (scale_ub may be NULL). */
sipu_status sipu_per_token_fp8_quant(const sipu_tensor *out, const sipu_tensor *input, const sipu_tensor *scale,
                                     const sipu_tensor *scale_ub);
/* vLLM _C::dynamic_scaled_int8_quant on rows [T, H]: int8 out, fp32 scale [T]. */
sipu_status sipu_per_token_int8_quant(const sipu_tensor *out, const sipu_tensor *input, const sipu_tensor *scale);
/* DeepSeek act_quant on rows [R, K]: e4m3 y [R, K], fp32 s [R, K/block]; ue8m0 rounds s up to a power of two. */
sipu_status sipu_act_quant(const sipu_tensor *y, const sipu_tensor *s, const sipu_tensor *x, int64_t block_size,
                           int32_t ue8m0);
/* DeepSeek weight_dequant: y [M, N] = x (e4m3) * s[i / block, j / block]. */
sipu_status sipu_weight_dequant(const sipu_tensor *y, const sipu_tensor *x, const sipu_tensor *s, int64_t block_size);
/* DeepSeek fp8_gemm: c [M, N] = sum over 128-wide K blocks of (a_blk . b_blk) * a_s[m, kb] * b_s[n / 128, kb]. */
sipu_status sipu_fp8_gemm(const sipu_tensor *c, const sipu_tensor *a, const sipu_tensor *a_s, const sipu_tensor *b,
                          const sipu_tensor *b_s);

/* ---- MoE -------------------------------------------------------------------------------- */
/* vLLM _moe_C::moe_sum: output [M, H] = sum over k of input [M, K, H]. */
sipu_status sipu_moe_sum(const sipu_tensor *input, const sipu_tensor *output);
/* vLLM _moe_C::topk_softmax: softmax over experts in fp32, top-k (ties to the lower index). */
sipu_status sipu_topk_softmax(const sipu_tensor *weights, const sipu_tensor *indices,
                              const sipu_tensor *token_expert_indices, const sipu_tensor *gating);
/* DeepSeek-V3 noaux_tc routing in one pass per token (OPS.md _moe_C::grouped_topk). */
sipu_status sipu_grouped_topk(const sipu_tensor *weights, const sipu_tensor *ids, const sipu_tensor *scores,
                              const sipu_tensor *bias, int64_t n_group, int64_t topk_group, int32_t renormalize,
                              double routed_scaling_factor, int32_t scoring_func);
/* vLLM _moe_C::moe_align_block_size (ids outside [0, num_experts) are skipped). */
sipu_status sipu_moe_align_block_size(const sipu_tensor *topk_ids, int64_t num_experts, int64_t block_size,
                                      const sipu_tensor *sorted_token_ids, const sipu_tensor *expert_ids,
                                      const sipu_tensor *num_tokens_post_pad);

/* vLLM inplace_fused_experts: hidden [T, H] (f32/f16/bf16) updated in place with
   sum_k w[t,k] * W2_e(silu_and_mul(W1_e x)) for e = topk_ids[t,k] (through expert_map when given:
   global id -> local id or -1, which contributes nothing); w1 [E, 2I, H], w2 [E, H, I], rows contiguous.
   FP8 when w1_scale is given: e4m3 weights with float32 [E, ceil(rows/128), ceil(cols/128)] block
   multipliers, activations quantized per 128-wide group. Every id is checked before hidden is written. */
sipu_status sipu_fused_experts(const sipu_tensor *hidden, const sipu_tensor *w1, const sipu_tensor *w2,
                               const sipu_tensor *topk_weights, const sipu_tensor *topk_ids,
                               const sipu_tensor *expert_map, const sipu_tensor *w1_scale,
                               const sipu_tensor *w2_scale, int32_t apply_router_weight_on_input);

/* ---- KV cache --------------------------------------------------------------------------- */
/* vLLM concat_and_cache_mla: slots < 0 are skipped; fp8 != 0 stores saturated e4m3 codes of x / scale[0]. */
sipu_status sipu_concat_and_cache_mla(const sipu_tensor *kv_c, const sipu_tensor *k_pe, const sipu_tensor *kv_cache,
                                      const sipu_tensor *slot_mapping, int32_t fp8, const sipu_tensor *scale);

/* ---- attention ------------------------------------------------------------------------------ */
/* Varlen attention with an online softmax over key tiles (SEMANTICS.md §11): q/out [Tq, Hq, D|Dv] packed by
   cu_seqlens_q (int32 [B+1]); keys either packed (k/v [Tk, Hk, D|Dv], cu_seqlens_k [B+1]) or paged
   (k/v [blocks, page, Hk, D|Dv], block_table int32 [B, max_blocks], seqused_k required; cu_seqlens_k NULL).
   seqused_k (int32 [B]) gives key counts when present. Query i sits at i + Lk - Lq; windows -1 = unbounded
   (causal = right window 0); softcap > 0 caps scores as softcap * tanh(s / softcap). lse (float32 [Hq, Tq],
   natural log) may be NULL. A row with no visible key gets 0 and lse +inf. Every index is checked first. */
sipu_status sipu_attention(const sipu_tensor *out, const sipu_tensor *lse, const sipu_tensor *q, const sipu_tensor *k,
                           const sipu_tensor *v, const sipu_tensor *cu_seqlens_q, const sipu_tensor *cu_seqlens_k,
                           const sipu_tensor *seqused_k, const sipu_tensor *block_table, double softmax_scale,
                           int64_t window_left, int64_t window_right, double softcap);

/* ---- sorting, selection, counting ----------------------------------------------------------- */
/* Floating keys order NaN above every number; equal keys keep their input order (stable). */
/* Each row of in [R, N] sorted into values [R, N] (in's dtype) and int64 indices [R, N]. */
sipu_status sipu_sort_rows(const sipu_tensor *values, const sipu_tensor *indices, const sipu_tensor *in, int32_t descending);
/* The k largest (or smallest) of each row of in [R, N], in order, into values [R, k] and int64 indices [R, k]; ties to the lower index. */
sipu_status sipu_topk_rows(const sipu_tensor *values, const sipu_tensor *indices, const sipu_tensor *in, int64_t k,
                           int32_t largest);
/* The number of nonzero elements of in (NaN counts as nonzero). */
sipu_status sipu_count_nonzero(const sipu_tensor *in, int64_t *count);
/* out int64 [count, ndim]: the indices of in's nonzero elements in row-major order (count as sipu_count_nonzero says). */
sipu_status sipu_nonzero(const sipu_tensor *out, const sipu_tensor *in);
/* Smallest and largest value of an integer tensor (untouched when it is empty). */
sipu_status sipu_int_minmax(const sipu_tensor *in, int64_t *min, int64_t *max);
/* out[v] = count (or sum of weights) of the values v of a 1-D integer in; every v is checked in [0, len(out)) first.
   int64 out counts; float32 out sums float32 weights in float, float64 out sums in double. */
sipu_status sipu_bincount(const sipu_tensor *out, const sipu_tensor *in, const sipu_tensor *weights);
/* out[i] = (elements[i] is in test_elements) != invert, bool out of elements' shape; both inputs of one dtype; NaN matches nothing. */
sipu_status sipu_isin(const sipu_tensor *out, const sipu_tensor *elements, const sipu_tensor *test, int32_t invert);

/* ---- random sampling ------------------------------------------------------------------------ */
/* Draw `counter` (0-based) of java.util.SplittableRandom(seed).nextDouble(): uniform in [0, 1). */
double sipu_uniform(uint64_t seed, uint64_t counter);
/* self[i] = -log1p(-sipu_uniform(seed, offset + i)) / lambd, i the row-major element index (lambd > 0). */
sipu_status sipu_exponential(const sipu_tensor *self, double lambd, uint64_t seed, uint64_t offset);

/* ---- machine limits --------------------------------------------------------------------------- */
/* Probes for the benchmark table's limits. Each does a fixed amount of work on sipu_get_num_threads()
   threads with the path sipu_simd() chose and returns how much (flops or bytes), so the caller times it.
   fma_f32: iters rounds of independent fp32 FMA chains on every thread. dot_bf16: the same with
   vdpbf16ps where the CPU has it (64 flops an instruction), else fp32 FMA, the kernels' bf16 path there.
   triad: a[i] = b[i] + scalar * c[i] over n floats split across the threads, reps times; returns 12 n reps bytes. */
double sipu_probe_fma_f32(int64_t iters);
double sipu_probe_dot_bf16(int64_t iters);
/* The same with AMX-BF16 tiles (tdpbf16ps, 16384 flops an instruction), which no SIPU kernel uses but
   libtorch's oneDNN does: 0 where the CPU or the OS does not offer AMX. */
double sipu_probe_amx_bf16(int64_t iters);
double sipu_probe_triad(float *a, const float *b, const float *c, int64_t n, float scalar, int64_t reps);

#ifdef __cplusplus
}
#endif

#endif /* SIPU_KERNELS_H */
