package dev.sipu.model;

import dev.sipu.api.DType;
import dev.sipu.api.Device;
import dev.sipu.api.Elements;
import dev.sipu.api.Scalar;
import dev.sipu.api.Tensor;
import dev.sipu.dispatch.Dispatcher;

/**
 * Greedy decoding: the prompt is prefilled into a fresh cache, then each step feeds the argmax token
 * back as a one-token decode over the cache. {@link #recompute} is the reference without a cache:
 * the whole sequence runs again for every new token.
 */
public final class Greedy {
    private final DeepseekV3 model;
    private final Dispatcher d;
    private final Device device;

    public Greedy(DeepseekV3 model, Dispatcher d, Device device) {
        this.model = model;
        this.d = d;
        this.device = device;
    }

    /** prompt + n generated tokens, decoding over the KV cache. */
    public long[] generate(long[] prompt, int n) {
        long[] seq = java.util.Arrays.copyOf(prompt, prompt.length + n);
        try (KvCache cache = model.newCache(seq.length)) {
            long[] next = prompt;
            for (int i = 0; i < n; i++) {
                try (Tensor tokens = tokens(next); Tensor logits = model.forward(tokens, cache)) {
                    seq[prompt.length + i] = lastArgmax(logits);
                }
                next = new long[] {seq[prompt.length + i]};
            }
        }
        return seq;
    }

    /** prompt + n generated tokens, recomputing the whole sequence at every step. */
    public long[] recompute(long[] prompt, int n) {
        long[] seq = java.util.Arrays.copyOf(prompt, prompt.length + n);
        for (int i = 0; i < n; i++) {
            int len = prompt.length + i;
            try (KvCache cache = model.newCache(len); Tensor tokens = tokens(java.util.Arrays.copyOf(seq, len));
                 Tensor logits = model.forward(tokens, cache)) {
                seq[len] = lastArgmax(logits);
            }
        }
        return seq;
    }

    /** Teacher-forced logits [T, vocab] of a whole sequence, on the host. */
    public Tensor logits(long[] seq) {
        try (KvCache cache = model.newCache(seq.length); Tensor tokens = tokens(seq); Tensor logits = model.forward(tokens, cache)) {
            return d.to(logits, Device.CPU);
        }
    }

    Tensor tokens(long[] ids) {
        Tensor host = d.ops().empty(new long[] {ids.length}, DType.INT64, Device.CPU);
        try (host) {
            for (int i = 0; i < ids.length; i++) Elements.putLong(host.data(), i * 8L, DType.INT64, ids[i]);
            return d.to(host, device);
        }
    }

    private long lastArgmax(Tensor logits) {
        try (Tensor last = d.ops().select(logits, 0, logits.size(0) - 1);
             Tensor arg = (Tensor) d.call("aten::argmax", last, null, false)) {
            return ((Scalar.Int) d.call("aten::_local_scalar_dense", arg)).value();
        }
    }
}
