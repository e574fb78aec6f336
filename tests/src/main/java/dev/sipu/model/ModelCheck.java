package dev.sipu.model;

import dev.sipu.api.Device;
import dev.sipu.api.Elements;
import dev.sipu.api.Tensor;
import dev.sipu.api.io.SafeTensors;
import dev.sipu.dispatch.Dispatcher;

import java.io.IOException;
import java.nio.file.Path;
import java.util.Arrays;

/**
 * Checks a model folder's {@code expected.safetensors} (HF transformers' logits and tokens) in the
 * three modes, with the criteria of the tiny model's README: fp32 activations (max |logits diff| <=
 * 1e-3, identical greedy tokens), bf16 activations (max diff <= 0.15, argmax equal at >= 11 of 12
 * prompt positions, scaled to the prompt length), FP8 weights (teacher-forced logits of the FP8
 * tokens: max diff <= 0.25, argmax equal at >= 90%). Greedy decoding over the KV cache must also
 * give the tokens of full recompute.
 */
public final class ModelCheck {
    /** One mode's metrics and verdict. */
    public record Result(DeepseekV3.Mode mode, Device device, double maxDiff, int argmaxEqual, int positions, String tokens,
                         boolean pass) {
        @Override
        public String toString() {
            return String.format("%-5s on %-6s max|diff| %.3g, argmax %d/%d%s  %s", mode.name().toLowerCase(), device, maxDiff,
                    argmaxEqual, positions, tokens.isEmpty() ? "" : ", " + tokens, pass ? "PASS" : "FAIL");
        }
    }

    private ModelCheck() {}

    public static Result check(Path dir, DeepseekV3.Mode mode, Dispatcher d, Device device) throws IOException {
        try (SafeTensors expected = SafeTensors.open(dir.resolve("expected.safetensors"))) {
            String prefix = mode == DeepseekV3.Mode.FP8 ? "fp8." : "";
            long[] generated = longs(expected.get(prefix + "generated_ids"));
            long[] prompt = longs(expected.get("input_ids"));
            try (DeepseekV3 model = new DeepseekV3(dir, mode, d, device, generated.length)) {
                Greedy g = new Greedy(model, d, device);
                return switch (mode) {
                    case FP32 -> {
                        try (Tensor got = g.logits(prompt); Tensor want = expected.get("logits")) {
                            double diff = maxDiff(got, want);
                            int agree = argmaxAgreement(got, want);
                            int n = generated.length - prompt.length;
                            long[] cached = g.generate(prompt, n), full = g.recompute(prompt, n);
                            boolean same = Arrays.equals(cached, generated), cacheOk = Arrays.equals(cached, full);
                            yield new Result(mode, device, diff, agree, prompt.length,
                                    "tokens " + matches(cached, generated) + "/" + generated.length + " match, cache = recompute: " + (cacheOk ? "yes" : "no"),
                                    diff <= 1e-3 && same && cacheOk);
                        }
                    }
                    case BF16 -> {
                        try (Tensor got = g.logits(prompt); Tensor want = expected.get("logits")) {
                            double diff = maxDiff(got, want);
                            int agree = argmaxAgreement(got, want);
                            yield new Result(mode, device, diff, agree, prompt.length, "", diff <= 0.15 && agree * 12 >= 11 * prompt.length);
                        }
                    }
                    case FP8 -> {
                        try (Tensor got = g.logits(generated); Tensor want = expected.get("fp8.generated_logits")) {
                            double diff = maxDiff(got, want);
                            int agree = argmaxAgreement(got, want);
                            yield new Result(mode, device, diff, agree, generated.length, "", diff <= 0.25 && agree * 10 >= 9 * generated.length);
                        }
                    }
                };
            }
        }
    }

    private static long[] longs(Tensor t) {
        try (t) {
            long[] r = new long[(int) t.numel()];
            for (int i = 0; i < r.length; i++) r[i] = Elements.getLong(t, i);
            return r;
        }
    }

    private static int matches(long[] a, long[] b) {
        int n = 0;
        for (int i = 0; i < Math.min(a.length, b.length); i++) if (a[i] == b[i]) n++;
        return n;
    }

    /** Max |got - want| over [T, V] host tensors (want may carry a leading batch of 1). */
    static double maxDiff(Tensor got, Tensor want) {
        double m = 0;
        for (long i = 0; i < got.numel(); i++) m = Math.max(m, Math.abs(Elements.getDouble(got, i) - Elements.getDouble(want, i)));
        return m;
    }

    static int argmaxAgreement(Tensor got, Tensor want) {
        long v = got.size(got.dim() - 1), rows = got.numel() / v;
        int agree = 0;
        for (long r = 0; r < rows; r++) if (argmax(got, r, v) == argmax(want, r, v)) agree++;
        return agree;
    }

    private static long argmax(Tensor t, long row, long v) {
        long best = 0;
        for (long j = 1; j < v; j++) if (Elements.getDouble(t, row * v + j) > Elements.getDouble(t, row * v + best)) best = j;
        return best;
    }
}
