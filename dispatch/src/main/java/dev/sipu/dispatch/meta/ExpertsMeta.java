package dev.sipu.dispatch.meta;

import dev.sipu.api.DType;
import dev.sipu.api.Tensor;
import dev.sipu.dispatch.Call;

import java.util.Arrays;

/**
 * The arguments of {@code vllm::inplace_fused_experts} checked once for every device (SEMANTICS.md
 * §10): the unquantized path and DeepSeek's FP8 block path (use_fp8_w8a8, block_shape [128, 128],
 * dynamic per-token-group activation scales). Both kernels keep every intermediate in fp32 and round
 * once per token at the end, the reading under which the recorded torch-2.11 cases reproduce exactly.
 * Other quantization schemes and activations are refused by name rather than computed wrongly.
 * topk_ids values are checked by the kernels before any write.
 */
public final class ExpertsMeta {
    private ExpertsMeta() {}

    /** hidden [T, H], w1 [E, 2I, H], w2 [E, H, I], topk [T, K]; scales non-null for FP8. */
    public record Plan(Tensor hidden, Tensor w1, Tensor w2, Tensor topkWeights, Tensor topkIds, Tensor expertMap,
                       Tensor w1Scale, Tensor w2Scale, boolean onInput, long globalExperts) {
        public boolean fp8() { return w1Scale != null; }
        public long tokens() { return hidden.sizes()[0]; }
        public long hiddenSize() { return hidden.sizes()[1]; }
        public long experts() { return w1.sizes()[0]; }
        public long intermediate() { return w1.sizes()[1] / 2; }
        public long topk() { return topkIds.sizes()[1]; }
    }

    public static Plan of(Call c) {
        Tensor hidden = c.tensor(0), w1 = c.tensor(1), w2 = c.tensor(2), tw = c.tensor(3), ids = c.tensor(4);
        if (!"silu".equals(c.str(5))) throw c.error(5, "activation '" + c.str(5) + "' is not supported (silu only)");
        for (int i = 8; i <= 11; i++) if (c.bool(i)) throw c.error(i, "is not supported (bf16/f16/f32 or use_fp8_w8a8 only)");
        for (int i : new int[] {16, 17, 18, 19}) {
            if (c.arg(i) != null) throw c.error(i, "is not supported (activations are quantized dynamically, without zero points)");
        }
        DType t = hidden.dtype();
        if (t != DType.FLOAT32 && t != DType.FLOAT16 && t != DType.BFLOAT16) throw c.error(0, "must be float32, float16 or bfloat16, got " + t);
        if (hidden.dim() != 2) throw c.error(0, "must be [T, H], got " + hidden.dim() + "-D");
        if (w1.dim() != 3 || w1.sizes()[1] % 2 != 0 || w1.sizes()[2] != hidden.sizes()[1]) {
            throw c.error(1, "must be [E, 2I, " + hidden.sizes()[1] + "], got " + Arrays.toString(w1.sizes()));
        }
        long e = w1.sizes()[0], i = w1.sizes()[1] / 2, h = hidden.sizes()[1];
        if (w2.dim() != 3 || w2.sizes()[0] != e || w2.sizes()[1] != h || w2.sizes()[2] != i) {
            throw c.error(2, "must be [" + e + ", " + h + ", " + i + "], got " + Arrays.toString(w2.sizes()));
        }
        if (w1.sizes()[2] > 1 && w1.strides()[2] != 1) throw c.error(1, "rows must be contiguous");
        if (w2.sizes()[2] > 1 && w2.strides()[2] != 1) throw c.error(2, "rows must be contiguous");
        if (ids.dim() != 2 || ids.sizes()[0] != hidden.sizes()[0] || (ids.dtype() != DType.INT32 && ids.dtype() != DType.INT64)) {
            throw c.error(4, "must be int32 or int64 [" + hidden.sizes()[0] + ", K], got " + ids.dtype() + Arrays.toString(ids.sizes()));
        }
        if (tw.dtype() != DType.FLOAT32 || !Arrays.equals(tw.sizes(), ids.sizes())) {
            throw c.error(3, "must be float32 of topk_ids' shape " + Arrays.toString(ids.sizes()) + ", got " + tw.dtype() + Arrays.toString(tw.sizes()));
        }
        boolean onInput = c.bool(6);
        if (onInput && ids.sizes()[1] != 1) throw c.error(6, "needs top-k 1, got " + ids.sizes()[1]);
        Tensor map = c.optTensor(13);
        if (map != null && (map.dim() != 1 || (map.dtype() != DType.INT32 && map.dtype() != DType.INT64))) {
            throw c.error(13, "must be a 1-D int32 or int64 tensor");
        }
        long global = map != null ? map.sizes()[0] : e;
        long given = c.i64(12);
        if (given != -1 && given != global) throw c.error(12, "is " + given + " but the experts number " + global);
        boolean fp8 = c.bool(7);
        Tensor s1 = c.optTensor(14), s2 = c.optTensor(15);
        if (fp8) {
            long[] block = c.ints(20);
            if (block == null || !Arrays.equals(block, new long[] {128, 128})) {
                throw c.error(20, "must be [128, 128] with use_fp8_w8a8, got " + Arrays.toString(block));
            }
            if (w1.dtype() != DType.FLOAT8_E4M3FN || w2.dtype() != DType.FLOAT8_E4M3FN) throw c.error(1, "w1 and w2 must be float8_e4m3fn with use_fp8_w8a8");
            // per_token_group_quant_fp8 quantizes whole 128-groups; vLLM asserts both GEMMs' K divide
            if (h % 128 != 0) throw c.error(0, "hidden size " + h + " must be a multiple of 128 (block_k) with use_fp8_w8a8");
            if (i % 128 != 0) throw c.error(2, "intermediate size " + i + " must be a multiple of 128 (block_k) with use_fp8_w8a8");
            checkScale(c, 14, s1, e, 2 * i, h);
            checkScale(c, 15, s2, e, h, i);
        } else {
            if (w1.dtype() != t || w2.dtype() != t) throw c.error(1, "w1 and w2 must be " + t + " like hidden_states");
            if (s1 != null || s2 != null) throw c.error(s1 != null ? 14 : 15, "weight scales need use_fp8_w8a8");
        }
        return new Plan(hidden, w1, w2, tw, ids, map, fp8 ? s1 : null, fp8 ? s2 : null, onInput, global);
    }

    private static void checkScale(Call c, int arg, Tensor s, long e, long rows, long cols) {
        long[] want = {e, (rows + 127) / 128, (cols + 127) / 128};
        if (s == null || s.dtype() != DType.FLOAT32 || !Arrays.equals(s.sizes(), want)) {
            throw c.error(arg, "must be float32 " + Arrays.toString(want) + ", got " + (s == null ? "None" : s.dtype() + Arrays.toString(s.sizes())));
        }
    }
}
