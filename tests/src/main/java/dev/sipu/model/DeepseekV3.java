package dev.sipu.model;

import dev.sipu.api.DType;
import dev.sipu.api.Device;
import dev.sipu.api.Tensor;
import dev.sipu.dispatch.Dispatcher;

import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * A DeepSeek-V3 model whose every tensor operation goes through the dispatcher: embedding, per layer
 * MLA attention and a dense MLP (the first {@code first_k_dense_replace} layers) or MoE, the residual
 * stream added and normed between them (see {@link #addNorm}), the final norm and lm_head. {@link #forward} runs
 * new tokens at the cache's next positions and returns their fp32 logits.
 */
public final class DeepseekV3 implements AutoCloseable {
    /**
     * Activation dtype and which checkpoint file. FP8 keeps fp32 activations: the reference is HF
     * computing in fp32 with FP8 projections, whose outputs stay fp32; with fp32 activations the
     * tiny model's FP8 logits agree with it to 3e-6 up to the first position where an activation
     * lands on an e4m3 rounding tie, with bf16 ones they could not come closer than bf16 rounding.
     */
    public enum Mode {
        FP32(DType.FLOAT32, "model.safetensors"), BF16(DType.BFLOAT16, "model.safetensors"), FP8(DType.FLOAT32, "model-fp8.safetensors");

        final DType dtype;
        final String file;

        Mode(DType dtype, String file) {
            this.dtype = dtype;
            this.file = file;
        }
    }

    private final ModelConfig cfg;
    private final Dispatcher d;
    private final Device device;
    private final Mode mode;
    private final Weights w;
    private final Rope rope;
    private final Tensor embed, finalNorm;
    private final Linear lmHead;
    private final List<Layer> layers = new ArrayList<>();

    private record Layer(Tensor inputNorm, Tensor postNorm, MlaAttention attn, Mlp mlp, Moe moe) {}

    public DeepseekV3(Path dir, Mode mode, Dispatcher d, Device device, int maxPositions) throws IOException {
        this.cfg = ModelConfig.load(dir);
        this.d = d;
        this.device = device;
        this.mode = mode;
        this.w = new Weights(dir.resolve(mode.file), d, device, mode.dtype);
        try {
            this.rope = new Rope(cfg, maxPositions, d, w);
            this.embed = w.get("model.embed_tokens.weight");
            this.finalNorm = w.get("model.norm.weight");
            this.lmHead = Linear.load(w, "lm_head");
            for (int l = 0; l < cfg.layers(); l++) {
                String p = "model.layers." + l + ".";
                boolean dense = l < cfg.firstDense();
                layers.add(new Layer(w.get(p + "input_layernorm.weight"), w.get(p + "post_attention_layernorm.weight"),
                        new MlaAttention(cfg, w, p + "self_attn."), dense ? new Mlp(w, p + "mlp.") : null,
                        dense ? null : new Moe(cfg, w, p + "mlp.")));
            }
        } catch (RuntimeException e) {
            w.close();
            throw e;
        }
    }

    public ModelConfig config() { return cfg; }
    public Mode mode() { return mode; }
    public Rope rope() { return rope; }

    public KvCache newCache(int capacity) {
        return new KvCache(cfg, capacity, d, device, DType.FLOAT32); // MLA attends in fp32 (see MlaAttention)
    }

    /** Logits fp32 [T, vocab] for tokens (int64 [T]) at positions cache.length() .. + T - 1. */
    public Tensor forward(Tensor tokens, KvCache cache) {
        int t = (int) tokens.size(0), start = cache.length();
        try (Step s = new Step(KvCache.ints(d, device, t, i -> start + i, t), cache.slots(t),
                KvCache.ints(d, device, 2, i -> i * t, 2), KvCache.ints(d, device, 1, i -> start + t, 1), start + t)) {
            Tensor residual = embedOf(tokens); // the residual stream, in the activation dtype
            Tensor x = MlaAttention.rmsNorm(d, residual, layers.get(0).inputNorm(), cfg.eps());
            try {
                for (int l = 0; l < layers.size(); l++) {
                    Layer layer = layers.get(l);
                    Tensor a = layer.attn().forward(x, s, cache, l, rope);
                    x.close();
                    x = a;
                    addNorm(x, residual, layer.postNorm());
                    Tensor m = layer.mlp() != null ? layer.mlp().forward(x) : layer.moe().forward(x);
                    x.close();
                    x = m;
                    Tensor next = l + 1 < layers.size() ? layers.get(l + 1).inputNorm() : finalNorm;
                    addNorm(x, residual, next);
                }
                cache.advance(t);
                try (Tensor logits = lmHead.apply(x)) {
                    return d.ops().toDtype(logits, DType.FLOAT32);
                }
            } finally {
                x.close();
                residual.close();
            }
        }
    }

    /**
     * residual += x (rounded to the activation dtype), then x = norm(residual), in place. Not
     * {@code _C::fused_add_rms_norm}: that op follows vLLM's native reference (pinned by the
     * conformance suite), which normalizes the unrounded fp32 sum, while HF's decoder layer normalizes
     * the residual as stored. In bf16 the two differ by about as much as a close routing margin: on the
     * tiny model this rounding point alone decides a MoE choice (layer 1, position 8, expert scores
     * 0.4105 against 0.4098 in fp32), and with it up to 1.6 in the logits.
     */
    private void addNorm(Tensor x, Tensor residual, Tensor weight) {
        try (Tensor sum = d.ops().add(residual, x)) {
            d.ops().copy_(residual, sum);
        }
        d.call("_C::rms_norm", x, residual, weight, cfg.eps());
    }

    private Tensor embedOf(Tensor tokens) {
        try (Tensor e = (Tensor) d.call("aten::embedding", embed, tokens)) {
            return d.ops().contiguousCopy(e);
        }
    }

    @Override
    public void close() {
        rope.close();
        w.close();
    }
}
