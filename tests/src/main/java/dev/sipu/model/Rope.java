package dev.sipu.model;

import dev.sipu.api.CpuMemory;
import dev.sipu.api.DType;
import dev.sipu.api.Tensor;
import dev.sipu.dispatch.Dispatcher;

import java.lang.foreign.ValueLayout;

/**
 * Rotary embedding of the rope part of queries and keys through {@code _C::rotary_embedding}, with
 * the cos/sin cache built from the config: YaRN frequencies (interpolation blended with extrapolation
 * over the correction range of beta_fast/beta_slow) and its attention factor, or plain rope. The
 * checkpoint stores rope dims as interleaved pairs (rope_interleave), which is vLLM's GPT-J style;
 * otherwise the halves style (neox).
 */
public final class Rope implements AutoCloseable {
    private final Dispatcher d;
    private final Tensor cosSin;
    private final boolean neox;
    private final int dim;
    private final double softmaxScale;

    public Rope(ModelConfig cfg, int maxPositions, Dispatcher d, Weights w) {
        this.d = d;
        this.dim = cfg.ropeDim();
        this.neox = !cfg.ropeInterleave();
        ModelConfig.Rope r = cfg.rope();
        boolean yarn = r.type().equals("yarn");
        int half = dim / 2;
        float[] inv = new float[half];
        double low = 0, high = 0;
        if (yarn) {
            low = correctionDim(r.betaFast(), dim, r.theta(), r.originalMax());
            high = correctionDim(r.betaSlow(), dim, r.theta(), r.originalMax());
            if (r.truncate()) {
                low = Math.floor(low);
                high = Math.ceil(high);
            }
            low = Math.max(low, 0);
            high = Math.min(high, dim - 1);
            if (low == high) high += 0.001;
        }
        for (int i = 0; i < half; i++) {
            float pos = (float) Math.pow(r.theta(), (2.0 * i) / dim);
            float extrapolation = 1f / pos;
            if (!yarn) {
                inv[i] = extrapolation;
                continue;
            }
            float interpolation = 1f / (float) (r.factor() * pos);
            float ramp = (float) Math.min(1, Math.max(0, (i - low) / (high - low)));
            float keep = 1 - ramp; // the share of extrapolation
            inv[i] = interpolation * (1 - keep) + extrapolation * keep;
        }
        // HF's rule: an explicit attention_factor, else the ratio of the two mscales when both are
        // given (1 for DeepSeek-V3's own configs), else YaRN's default 0.1 ln(factor) + 1.
        double attention = !yarn ? 1 : r.attentionFactor() != null ? r.attentionFactor()
                : r.mscale() != 0 && r.mscaleAllDim() != 0 ? mscale(r.factor(), r.mscale()) / mscale(r.factor(), r.mscaleAllDim())
                : mscale(r.factor(), 1);
        Tensor host = Tensor.adopt(CpuMemory.allocate((long) maxPositions * dim * 4), DType.FLOAT32, maxPositions, dim);
        try (host) {
            for (int p = 0; p < maxPositions; p++)
                for (int i = 0; i < half; i++) {
                    float angle = (float) p * inv[i];
                    host.data().setAtIndex(ValueLayout.JAVA_FLOAT, (long) p * dim + i, (float) (Math.cos(angle) * attention));
                    host.data().setAtIndex(ValueLayout.JAVA_FLOAT, (long) p * dim + half + i, (float) (Math.sin(angle) * attention));
                }
            this.cosSin = d.to(host, w.device());
        }
        double scale = Math.pow(cfg.qkDim(), -0.5);
        if (yarn && r.mscaleAllDim() != 0) {
            double m = mscale(r.factor(), r.mscaleAllDim());
            scale *= m * m;
        }
        this.softmaxScale = scale;
    }

    private static double correctionDim(double rotations, int dim, double base, int maxPos) {
        return dim * Math.log(maxPos / (rotations * 2 * Math.PI)) / (2 * Math.log(base));
    }

    private static double mscale(double factor, double m) {
        return factor <= 1 ? 1 : 0.1 * m * Math.log(factor) + 1;
    }

    /** DeepSeek-V3's softmax scale: qk_head_dim^-0.5, times mscale(all_dim)^2 under YaRN. */
    public double softmaxScale() { return softmaxScale; }

    /** The cos|sin table [positions, rope_dim] (for checks). */
    public Tensor table() { return cosSin; }

    /** Rotates q [T, H, rope_dim] and k [T, 1, rope_dim] (views of larger rows are fine) in place. */
    public void apply(Tensor positions, Tensor q, Tensor k) {
        d.call("_C::rotary_embedding", positions, q, k, (long) dim, cosSin, neox);
    }

    @Override
    public void close() { cosSin.close(); }
}
