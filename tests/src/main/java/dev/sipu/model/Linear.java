package dev.sipu.model;

import dev.sipu.api.DType;
import dev.sipu.api.Tensor;
import dev.sipu.dispatch.Dispatcher;

import java.util.List;

/**
 * y = x W^T for a checkpoint projection. A float8 weight (with its 128x128 block scales) runs with
 * DeepSeek's FP8 semantics: x is quantized by {@code deepseek::act_quant} (e4m3 per 128-wide block of
 * K, scale max(amax, 1e-4)/448), multiplied by the block-scaled e4m3 weight with fp32 accumulation.
 * With bf16 activations that is {@code deepseek::fp8_gemm}, whose output is bf16 (DeepSeek's default
 * dtype). With fp32 activations the output must stay fp32: rounding every projection to bf16 moves the
 * tiny model's FP8 logits by up to 1.8 against the fp32-output reference, while the same products
 * kept in fp32 reproduce it to 2e-6 where no e4m3 rounding step is crossed. So there the quantized
 * activation is expanded back to fp32 (e4m3 value x block scale, exact up to one fp32 rounding) and
 * multiplied by the fp32-dequantized weight: the same sum of e4m3 x e4m3 products, in a different order.
 */
public final class Linear {
    public static final long BLOCK = 128;

    private final Dispatcher d;
    private final Tensor weight, scale;
    private final Tensor dequantized; // fp32 [out, in], float8 weights with fp32 activations only (4 bytes a weight)

    private Linear(Dispatcher d, Tensor weight, Tensor scale, Tensor dequantized) {
        this.d = d;
        this.weight = weight;
        this.scale = scale;
        this.dequantized = dequantized;
    }

    public static Linear load(Weights w, String name) {
        Tensor weight = w.get(name + ".weight");
        if (!weight.dtype().isFloat8()) return new Linear(w.dispatcher(), weight, null, null);
        Tensor scale = w.get(name + ".weight_scale_inv", DType.FLOAT32);
        Tensor dense = w.dtype() == DType.FLOAT32 ? w.own(dequantizeF32(w.dispatcher(), weight, scale)) : null;
        return new Linear(w.dispatcher(), weight, scale, dense);
    }

    public Tensor weight() { return weight; }
    public Tensor scale() { return scale; }
    public boolean fp8() { return scale != null; }

    /** x [..., in] -> [..., out] in x's dtype. */
    @SuppressWarnings("unchecked")
    public Tensor apply(Tensor x) {
        if (scale == null) return d.ops().linear(x, weight, null);
        if (x.dtype() == DType.FLOAT32) {
            try (Tensor xq = quantized(x)) {
                return d.ops().linear(xq, dequantized, null);
            }
        }
        try (Tensor xc = d.ops().contiguous(x)) {
            List<Tensor> q = (List<Tensor>) d.call("deepseek::act_quant", xc, BLOCK, null);
            try (Tensor y = q.get(0); Tensor s = q.get(1);
                 Tensor out = (Tensor) d.call("deepseek::fp8_gemm", y, s, weight, scale)) {
                return d.ops().toDtype(out, x.dtype());
            }
        }
    }

    /**
     * x [..., K] as an FP8 projection sees it, in fp32: {@code act_quant}'s e4m3 values times their
     * block scales. For inputs whose projection is folded into other products (MLA's absorbed kv_b_proj).
     */
    @SuppressWarnings("unchecked")
    public Tensor quantized(Tensor x) {
        long k = x.size(x.dim() - 1), rows = x.numel() / k;
        try (Tensor xc = d.ops().contiguous(x)) {
            List<Tensor> q = (List<Tensor>) d.call("deepseek::act_quant", xc, BLOCK, null);
            try (Tensor y = q.get(0); Tensor s = q.get(1); Tensor y32 = d.ops().toDtype(y, DType.FLOAT32);
                 Tensor blocks = d.ops().view(y32, rows, k / BLOCK, BLOCK);
                 Tensor s3 = d.ops().view(s, rows, k / BLOCK, 1);
                 Tensor scaled = d.ops().mul(blocks, s3)) {
                return d.ops().reshape(scaled, x.sizes());
            }
        }
    }

    /**
     * The weight as a dense fp32 matrix (for float8 ones, e4m3 value x block scale): for the MLA
     * absorption, which multiplies the weight into other operands rather than applying it. Not
     * {@code deepseek::weight_dequant}: its bf16 output would round the weight a second time.
     */
    public Tensor dense(Weights w) {
        if (scale == null) return weight;
        return dequantized != null ? dequantized : w.own(dequantizeF32(d, weight, scale));
    }

    private static Tensor dequantizeF32(Dispatcher d, Tensor weight, Tensor scale) {
        long n = weight.size(0), k = weight.size(1);
        try (Tensor rows = (Tensor) d.call("aten::repeat_interleave.self_int", scale, BLOCK, 0L);
             Tensor rowsN = d.ops().narrow(rows, 0, 0, n);
             Tensor full = (Tensor) d.call("aten::repeat_interleave.self_int", rowsN, BLOCK, 1L);
             Tensor fullK = d.ops().narrow(full, 1, 0, k);
             Tensor w32 = d.ops().toDtype(weight, DType.FLOAT32)) {
            return d.ops().mul(w32, fullK);
        }
    }
}
