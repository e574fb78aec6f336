package dev.sipu.crosscheck;

import dev.sipu.api.DType;
import dev.sipu.api.Elements;
import dev.sipu.api.Device;
import dev.sipu.api.OpArgumentException;
import dev.sipu.api.SipuException;
import dev.sipu.api.Tensor;
import dev.sipu.dispatch.Dispatcher;
import org.junit.jupiter.api.Test;

import java.util.Arrays;
import java.util.HashMap;
import java.util.Map;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

/**
 * inplace_fused_experts on shapes the recorded cases do not have (odd token counts, 16 and 64 experts,
 * top-3 to top-8, expert maps with -1 entries; f32, bf16 and DeepSeek's block-FP8 weights), SIPU and
 * CPU against a plain per-token loop in double precision of the semantics the recorded torch-2.11
 * cases follow: no rounding between the GEMMs, activations quantized per 128-group (FP8), one
 * rounding of each token's sum. A bad id or a bad FP8 argument raises and leaves hidden_states
 * untouched.
 */
class FusedExpertsCrossCheckTest {
    private static final Dispatcher D = Dispatcher.standard().strict(true);
    private static final Device[] DEVICES = {Device.CPU, Device.SIPU0};

    @Test
    void float32ExpertsMatchAPerTokenLoop() {
        SplittableRandom rnd = new SplittableRandom(9);
        int t = 37, h = 100, inter = 72, e = 16, k = 3, global = 20; // widths off the vector width
        double[] a = rand(rnd, t * h, 1), w1 = rand(rnd, e * 2 * inter * h, 0.1), w2 = rand(rnd, e * h * inter, 0.1);
        double[] ids = new double[t * k], tw = new double[t * k], map = new double[global];
        for (int g = 0; g < global; g++) map[g] = g % 5 == 4 ? -1 : g * 7 % e; // four global ids live elsewhere
        for (int i = 0; i < t * k; i++) {
            ids[i] = rnd.nextInt(global);
            tw[i] = rnd.nextDouble();
        }
        double[] want = new double[t * h];
        for (int tok = 0; tok < t; tok++)
            for (int s = 0; s < k; s++) {
                int le = (int) map[(int) ids[tok * k + s]];
                if (le < 0) continue;
                double[] h2 = new double[inter];
                for (int j = 0; j < inter; j++) {
                    double g = 0, u = 0;
                    for (int c = 0; c < h; c++) {
                        g += a[tok * h + c] * w1[(le * 2 * inter + j) * h + c];
                        u += a[tok * h + c] * w1[(le * 2 * inter + inter + j) * h + c];
                    }
                    h2[j] = g / (1 + Math.exp(-g)) * u;
                }
                for (int c = 0; c < h; c++) {
                    double acc = 0;
                    for (int j = 0; j < inter; j++) acc += h2[j] * w2[(le * h + c) * inter + j];
                    want[tok * h + c] += acc * tw[tok * k + s];
                }
            }
        for (Device dev : DEVICES) {
            try (Tensor x = AtenCrossCheckTest.tensor(a, DType.FLOAT32, dev, t, h);
                 Tensor tw1 = AtenCrossCheckTest.tensor(w1, DType.FLOAT32, dev, e, 2 * inter, h);
                 Tensor tw2 = AtenCrossCheckTest.tensor(w2, DType.FLOAT32, dev, e, h, inter);
                 Tensor weights = AtenCrossCheckTest.tensor(tw, DType.FLOAT32, dev, t, k);
                 Tensor tids = AtenCrossCheckTest.tensor(ids, DType.INT32, dev, t, k);
                 Tensor tmap = AtenCrossCheckTest.tensor(map, DType.INT32, dev, global)) {
                D.call("vllm::inplace_fused_experts", new Object[] {x, tw1, tw2, weights, tids}, Map.of("expert_map", tmap));
                AtenCrossCheckTest.check("fused experts on " + dev, want, x, 2e-4);
                double[] bad = ids.clone();
                bad[5] = global;
                try (Tensor badIds = AtenCrossCheckTest.tensor(bad, DType.INT64, dev, t, k)) {
                    SipuException ex = assertThrows(SipuException.class, () -> D.call("vllm::inplace_fused_experts",
                            new Object[] {x, tw1, tw2, weights, badIds}, Map.of("expert_map", tmap)));
                    AtenCrossCheckTest.check("a refused call leaves hidden_states on " + dev, want, x, 2e-4);
                    if (dev.isCpu()) assertInstanceOf(OpArgumentException.class, ex, "the CPU check names the argument");
                }
            }
        }
    }

    /**
     * 64 experts top-8 as DeepSeek routes (distinct experts per token, weights summing to 1), odd token
     * counts, bf16 activations with bf16 or block-FP8 weights. A third shape has 16 experts top-6, a
     * hidden size of three quantization groups and an expert map sending a quarter of the ids away.
     */
    @Test
    void bf16AndFp8BlockExpertsWithManyExperts() {
        int[][] shapes = {{37, 64, 8, 256, 128, 0}, {1, 64, 8, 256, 128, 0}, {5, 16, 6, 384, 256, 20}}; // T, E, K, H, I, global ids
        for (int[] sh : shapes) {
            for (boolean fp8 : new boolean[] {false, true}) {
                SplittableRandom rnd = new SplittableRandom(sh[0] * 131L + sh[1] + (fp8 ? 7 : 0));
                run(rnd, sh[0], sh[1], sh[2], sh[3], sh[4], sh[5], fp8);
            }
        }
    }

    private static void run(SplittableRandom rnd, int t, int e, int k, int h, int inter, int global, boolean fp8) {
        String what = (fp8 ? "fp8-block " : "bf16 ") + "T " + t + " E " + e + " top-" + k + " H " + h + " I " + inter
                + (global > 0 ? " map " + global : "");
        int ids = global > 0 ? global : e;
        double[] a = new double[t * h];
        for (int i = 0; i < a.length; i++) a[i] = bf16(rnd.nextGaussian());
        // FP8: codes of N(0, 1) * 64 (the e4m3 range), block multipliers near 1 / (64 sqrt(cols)), so
        // that every GEMM output is of order 1; bf16: the same magnitudes directly.
        double[] w1 = weights(rnd, e * 2 * inter * h, h, fp8), w2 = weights(rnd, e * h * inter, inter, fp8);
        double[] s1 = fp8 ? scales(rnd, e * blocks(2 * inter) * blocks(h), h) : null, s2 = fp8 ? scales(rnd, e * blocks(h) * blocks(inter), inter) : null;
        double[] map = new double[ids];
        for (int g = 0; g < ids; g++) map[g] = global > 0 ? (g % 4 == 3 ? -1 : g * 7 % e) : g;
        double[] topIds = new double[t * k], tw = new double[t * k];
        for (int tok = 0; tok < t; tok++) {
            int[] perm = rnd.ints(0, ids).distinct().limit(k).toArray();
            double sum = 0;
            for (int s = 0; s < k; s++) sum += tw[tok * k + s] = rnd.nextDouble() + 0.05;
            for (int s = 0; s < k; s++) {
                topIds[tok * k + s] = perm[s];
                tw[tok * k + s] = (float) (tw[tok * k + s] / sum);
            }
        }
        double[] want = new double[t * h];
        for (int tok = 0; tok < t; tok++) {
            double[] x = Arrays.copyOfRange(a, tok * h, (tok + 1) * h);
            double[] xs = fp8 ? quantize(x) : null;
            for (int s = 0; s < k; s++) {
                int le = (int) map[(int) topIds[tok * k + s]];
                if (le < 0) continue;
                double[] acc1 = gemm(x, xs, w1, s1, le, 2 * inter, h);
                double[] h2 = new double[inter];
                for (int j = 0; j < inter; j++) h2[j] = acc1[j] / (1 + Math.exp(-acc1[j])) * acc1[inter + j];
                double[] hs = fp8 ? quantize(h2) : null;
                double[] acc2 = gemm(h2, hs, w2, s2, le, h, inter);
                for (int c = 0; c < h; c++) want[tok * h + c] += acc2[c] * tw[tok * k + s];
            }
        }
        double rms = 0;
        for (double v : want) rms += v * v / want.length;
        rms = Math.sqrt(rms);
        DType wt = fp8 ? DType.FLOAT8_E4M3FN : DType.BFLOAT16;
        for (Device dev : DEVICES) {
            try (Tensor x = AtenCrossCheckTest.tensor(a, DType.BFLOAT16, dev, t, h);
                 Tensor tw1 = AtenCrossCheckTest.tensor(w1, wt, dev, e, 2 * inter, h);
                 Tensor tw2 = AtenCrossCheckTest.tensor(w2, wt, dev, e, h, inter);
                 Tensor ts1 = fp8 ? AtenCrossCheckTest.tensor(s1, DType.FLOAT32, dev, e, blocks(2 * inter), blocks(h)) : null;
                 Tensor ts2 = fp8 ? AtenCrossCheckTest.tensor(s2, DType.FLOAT32, dev, e, blocks(h), blocks(inter)) : null;
                 Tensor weights = AtenCrossCheckTest.tensor(tw, DType.FLOAT32, dev, t, k);
                 Tensor tids = AtenCrossCheckTest.tensor(topIds, DType.INT32, dev, t, k);
                 Tensor tmap = AtenCrossCheckTest.tensor(map, DType.INT32, dev, ids)) {
                Map<String, Object> kw = new HashMap<>();
                if (global > 0) kw.put("expert_map", tmap);
                if (fp8) {
                    kw.put("use_fp8_w8a8", true);
                    kw.put("w1_scale", ts1);
                    kw.put("w2_scale", ts2);
                    kw.put("block_shape", new long[] {128, 128});
                }
                D.call("vllm::inplace_fused_experts", new Object[] {x, tw1, tw2, weights, tids}, kw);
                // bf16 output rounding (2^-8 relative) plus 1% of the rms: an e4m3 code that flips at a
                // midpoint (fp32 against double) moves a result by far less; bf16-rounded intermediates
                // before the activation quantization move it by several percent
                closeToRms(what + " on " + dev, want, x, 0x1p-8, (fp8 ? 0.01 : 0.002) * rms);
                if (fp8) {
                    kw.put("block_shape", new long[] {64, 64});
                    OpArgumentException ex = assertThrows(OpArgumentException.class,
                            () -> D.call("vllm::inplace_fused_experts", new Object[] {x, tw1, tw2, weights, tids}, kw));
                    assertTrue(ex.getMessage().contains("block_shape"), ex.getMessage());
                    kw.put("block_shape", new long[] {128, 128});
                    kw.put("w2_scale", ts1);
                    ex = assertThrows(OpArgumentException.class,
                            () -> D.call("vllm::inplace_fused_experts", new Object[] {x, tw1, tw2, weights, tids}, kw));
                    assertTrue(ex.getMessage().contains("w2_scale"), ex.getMessage());
                    closeToRms("refused FP8 calls leave hidden_states, " + what + " on " + dev, want, x, 0x1p-8, 0.01 * rms);
                }
            }
        }
    }

    /** Activations are quantized in whole 128-groups, so FP8 refuses a hidden or intermediate size off 128 before writing. */
    @Test
    void fp8RefusesSizesOffTheQuantizationGroup() {
        SplittableRandom rnd = new SplittableRandom(3);
        for (int[] sh : new int[][] {{192, 128}, {256, 96}}) { // H, I
            int t = 3, e = 4, k = 2, h = sh[0], inter = sh[1];
            double[] a = new double[t * h];
            for (int i = 0; i < a.length; i++) a[i] = bf16(rnd.nextGaussian());
            double[] w1 = weights(rnd, e * 2 * inter * h, h, true), w2 = weights(rnd, e * h * inter, inter, true);
            double[] s1 = scales(rnd, e * blocks(2 * inter) * blocks(h), h), s2 = scales(rnd, e * blocks(h) * blocks(inter), inter);
            double[] ids = {0, 1, 2, 3, 1, 2}, tw = {0.5, 0.5, 0.5, 0.5, 0.5, 0.5};
            for (Device dev : DEVICES) {
                try (Tensor x = AtenCrossCheckTest.tensor(a, DType.BFLOAT16, dev, t, h);
                     Tensor tw1 = AtenCrossCheckTest.tensor(w1, DType.FLOAT8_E4M3FN, dev, e, 2 * inter, h);
                     Tensor tw2 = AtenCrossCheckTest.tensor(w2, DType.FLOAT8_E4M3FN, dev, e, h, inter);
                     Tensor ts1 = AtenCrossCheckTest.tensor(s1, DType.FLOAT32, dev, e, blocks(2 * inter), blocks(h));
                     Tensor ts2 = AtenCrossCheckTest.tensor(s2, DType.FLOAT32, dev, e, blocks(h), blocks(inter));
                     Tensor weights = AtenCrossCheckTest.tensor(tw, DType.FLOAT32, dev, t, k);
                     Tensor tids = AtenCrossCheckTest.tensor(ids, DType.INT32, dev, t, k)) {
                    OpArgumentException ex = assertThrows(OpArgumentException.class, () -> D.call("vllm::inplace_fused_experts",
                            new Object[] {x, tw1, tw2, weights, tids}, Map.of("use_fp8_w8a8", true, "w1_scale", ts1, "w2_scale", ts2,
                                    "block_shape", new long[] {128, 128})));
                    assertTrue(ex.getMessage().contains("multiple of 128"), ex.getMessage());
                    AtenCrossCheckTest.check("a refused call leaves hidden_states (H " + h + ", I " + inter + ") on " + dev, a, x, 0);
                }
            }
        }
    }

    private static int blocks(int n) { return (n + 127) / 128; }

    /** out[n] = sum over 128-blocks of (x . W[e][n]) * xs[block] * scale[e][n / 128][block], or the plain dot without scales. */
    private static double[] gemm(double[] x, double[] xs, double[] w, double[] scale, int e, int rows, int cols) {
        double[] out = new double[rows];
        for (int n = 0; n < rows; n++) {
            for (int b = 0; b * 128 < cols; b++) {
                double part = 0;
                for (int c = b * 128; c < Math.min(cols, b * 128 + 128); c++) part += x[c] * w[(e * rows + n) * cols + c];
                out[n] += scale == null ? part : part * xs[b] * scale[(e * blocks(rows) + n / 128) * blocks(cols) + b];
            }
        }
        return out;
    }

    /**
     * per_token_group_quant_fp8 on one row, in float as vLLM computes it: per group of 128, s =
     * max(amax, 1e-10) / 448, x becomes e4m3(x / s) (saturating, nearest, ties to the even code).
     * Returns the group scales; x holds the e4m3 values.
     */
    private static double[] quantize(double[] x) {
        double[] s = new double[blocks(x.length)];
        for (int b = 0; b < s.length; b++) {
            float amax = 0;
            for (int c = b * 128; c < Math.min(x.length, b * 128 + 128); c++) amax = Math.max(amax, Math.abs((float) x[c]));
            float sc = Math.max(amax, 1e-10f) / 448f;
            s[b] = sc;
            for (int c = b * 128; c < Math.min(x.length, b * 128 + 128); c++) x[c] = e4m3((float) x[c] / sc);
        }
        return s;
    }

    /** The e4m3fn values 0..448 by code (code = index), decoded from the format: 4 exponent bits (bias 7), 3 mantissa bits. */
    private static final double[] E4M3 = new double[127];
    static {
        for (int code = 0; code < 127; code++) {
            int ex = code >> 3, m = code & 7;
            E4M3[code] = ex == 0 ? m / 8.0 * 0x1p-6 : (1 + m / 8.0) * Math.pow(2, ex - 7);
        }
    }

    private static double e4m3(double v) {
        double a = Math.min(Math.abs(v), 448);
        int lo = 0;
        while (lo + 1 < E4M3.length && E4M3[lo + 1] <= a) lo++;
        int code = lo;
        if (lo + 1 < E4M3.length) {
            double dl = a - E4M3[lo], dh = E4M3[lo + 1] - a;
            if (dh < dl || (dh == dl && (lo & 1) == 1)) code = lo + 1;
        }
        return Math.copySign(E4M3[code], v);
    }

    private static double bf16(double v) {
        int b = Float.floatToRawIntBits((float) v);
        b = (b + 0x7FFF + ((b >> 16) & 1)) & 0xFFFF0000;
        return Float.intBitsToFloat(b);
    }

    private static double[] weights(SplittableRandom rnd, int n, int cols, boolean fp8) {
        double[] v = new double[n];
        for (int i = 0; i < n; i++) v[i] = fp8 ? e4m3(rnd.nextGaussian() * 64) : bf16(rnd.nextGaussian() / Math.sqrt(cols));
        return v;
    }

    private static double[] scales(SplittableRandom rnd, int n, int cols) {
        double[] v = new double[n];
        for (int i = 0; i < n; i++) v[i] = (float) ((0.75 + rnd.nextDouble() * 0.5) / (64 * Math.sqrt(cols)));
        return v;
    }

    /** |got - want| <= rtol |want| + atol for every element. */
    private static void closeToRms(String what, double[] want, Tensor got, double rtol, double atol) {
        try (Tensor host = D.to(got, Device.CPU)) {
            assertEquals(want.length, host.numel(), what + ": element count");
            for (int i = 0; i < want.length; i++) {
                double g = Elements.getDouble(host, i);
                if (!(Math.abs(g - want[i]) <= rtol * Math.abs(want[i]) + atol)) {
                    fail(what + ": element " + i + " is " + g + ", expected " + want[i] + " (atol " + atol + ")");
                }
            }
        }
    }

    private static double[] rand(SplittableRandom rnd, int n, double scale) {
        double[] v = new double[n];
        for (int i = 0; i < n; i++) v[i] = (rnd.nextDouble() * 2 - 1) * scale;
        return v;
    }
}
