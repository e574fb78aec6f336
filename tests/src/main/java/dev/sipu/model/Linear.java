package dev.sipu.model;

import dev.sipu.api.DType;
import dev.sipu.api.Tensor;
import dev.sipu.dispatch.Dispatcher;

import java.util.List;

/**
 * y = x W^T for a checkpoint projection. A float8 weight (with its 128x128 block scales) runs as
 * DeepSeek's inference does: {@code deepseek::act_quant} of x per 128-wide block, then
 * {@code deepseek::fp8_gemm} (fp32 accumulation, bf16 out), converted back to the activation dtype.
 */
public final class Linear {
    private final Dispatcher d;
    private final Tensor weight, scale;

    private Linear(Dispatcher d, Tensor weight, Tensor scale) {
        this.d = d;
        this.weight = weight;
        this.scale = scale;
    }

    public static Linear load(Weights w, String name) {
        Tensor weight = w.get(name + ".weight");
        Tensor scale = weight.dtype().isFloat8() ? w.get(name + ".weight_scale_inv", DType.FLOAT32) : null;
        return new Linear(w.dispatcher(), weight, scale);
    }

    public Tensor weight() { return weight; }
    public Tensor scale() { return scale; }
    public boolean fp8() { return scale != null; }

    /** x [..., in] -> [..., out] in x's dtype. */
    @SuppressWarnings("unchecked")
    public Tensor apply(Tensor x) {
        if (scale == null) return d.ops().linear(x, weight, null);
        try (Tensor xc = d.ops().contiguous(x)) {
            List<Tensor> q = (List<Tensor>) d.call("deepseek::act_quant", xc, 128L, null);
            try (Tensor y = q.get(0); Tensor s = q.get(1);
                 Tensor out = (Tensor) d.call("deepseek::fp8_gemm", y, s, weight, scale)) {
                return d.ops().toDtype(out, x.dtype());
            }
        }
    }

    /**
     * The weight as a dense matrix in {@code as} (float8 ones through {@code deepseek::weight_dequant}):
     * for the MLA absorption, which multiplies the weight into other operands rather than applying it.
     */
    public Tensor dense(Weights w, DType as) {
        if (scale == null) return weight;
        try (Tensor deq = (Tensor) d.call("deepseek::weight_dequant", weight, scale, 128L)) {
            return w.own(d.ops().toDtype(deq, as));
        }
    }
}
