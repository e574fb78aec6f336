package dev.sipu.model;

import dev.sipu.api.CpuMemory;
import dev.sipu.api.DType;
import dev.sipu.api.Device;
import dev.sipu.api.Elements;
import dev.sipu.api.Tensor;
import dev.sipu.api.io.SafeTensors;
import dev.sipu.dispatch.Dispatcher;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.lang.foreign.ValueLayout;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * A float8 projection with fp32 activations against DeepSeek's FP8 formula written out in double:
 * y[r, n] = sum_k e4m3(x[r, k] / s_x) s_x * e4m3 weight[n, k] s_w, with s_x = max(amax, 1e-4) / 448
 * per 128-wide block of a row and s_w per 128x128 weight tile. The weight has a partial row block
 * (144 outputs, as kv_a_proj_with_mqa). An output rounded to bf16 (fp8_gemm's dtype) misses the
 * tolerance by ~100x; an unquantized activation misses it by more.
 */
class LinearFp8Test {
    private static final int OUT = 144, IN = 256, ROWS = 5;

    @TempDir
    Path dir;

    @ParameterizedTest
    @ValueSource(strings = {"sipu:0", "cpu"})
    void fp32ActivationsFollowTheFp8FormulaWithoutRoundingTheOutput(String device) throws Exception {
        SplittableRandom rnd = new SplittableRandom(5);
        byte[] w = new byte[OUT * IN];
        for (int i = 0; i < w.length; i++) {
            byte b;
            do b = (byte) rnd.nextInt(256); while ((b & 0x7F) == 0x7F); // no NaN codes
            w[i] = b;
        }
        int rb = (OUT + 127) / 128, kb = IN / 128;
        float[] ws = new float[rb * kb];
        for (int i = 0; i < ws.length; i++) ws[i] = (float) (1e-3 * (1 + rnd.nextDouble()));
        float[] x = new float[ROWS * IN];
        for (int i = 0; i < x.length; i++) x[i] = (float) (rnd.nextGaussian() * (i % 128 == 7 ? 10 : 1));
        for (int i = 0; i < 128; i++) x[2 * IN + 128 + i] = (float) (rnd.nextGaussian() * 1e-6); // a block under the 1e-4 floor

        Path file = dir.resolve("p.safetensors");
        Map<String, Tensor> tensors = new LinkedHashMap<>();
        tensors.put("p.weight", bytes(w, OUT, IN));
        tensors.put("p.weight_scale_inv", floats(ws, rb, kb));
        SafeTensors.write(file, tensors, null);
        tensors.values().forEach(Tensor::close);

        Dispatcher d = Dispatcher.standard().strict(true);
        Device dev = Device.parse(device);
        try (Weights weights = new Weights(file, d, dev, DType.FLOAT32); Tensor hx = floats(x, ROWS, IN); Tensor dx = d.to(hx, dev)) {
            Linear linear = Linear.load(weights, "p");
            assertTrue(linear.fp8());
            double[] xq = quantized(x);
            try (Tensor q = linear.quantized(dx); Tensor hq = d.to(q, Device.CPU)) {
                assertEquals(DType.FLOAT32, hq.dtype());
                for (int i = 0; i < xq.length; i++) assertEquals(xq[i], Elements.getDouble(hq, i), 0.0, "quantized x at " + i);
            }
            try (Tensor y = linear.apply(dx); Tensor hy = d.to(y, Device.CPU)) {
                assertEquals(DType.FLOAT32, hy.dtype());
                for (int r = 0; r < ROWS; r++) {
                    double[] want = new double[OUT];
                    double scale = 0;
                    for (int n = 0; n < OUT; n++) {
                        double s = 0;
                        for (int k = 0; k < IN; k++) s += xq[r * IN + k] * e4m3(w[n * IN + k]) * ws[(n / 128) * kb + k / 128];
                        want[n] = s;
                        scale = Math.max(scale, Math.abs(s));
                    }
                    for (int n = 0; n < OUT; n++) {
                        // fp32 summation of 256 products: well under 1e-5 of the row's largest output
                        assertEquals(want[n], Elements.getDouble(hy, (long) r * OUT + n), 1e-5 * scale, "y[" + r + ", " + n + "] on " + device);
                    }
                }
            }
        }
    }

    /** act_quant then back to fp32, per 128-wide block: e4m3(x / s) * s in fp32 arithmetic. */
    private static double[] quantized(float[] x) {
        double[] q = new double[x.length];
        for (int b = 0; b < x.length / 128; b++) {
            float amax = 0;
            for (int i = 0; i < 128; i++) amax = Math.max(amax, Math.abs(x[b * 128 + i]));
            float s = Math.max(amax, 1e-4f) / 448f;
            for (int i = 0; i < 128; i++) q[b * 128 + i] = (float) (nearestE4m3(x[b * 128 + i] / s) * s);
        }
        return q;
    }

    /** The e4m3fn value of a code: sign, 4 exponent bits (bias 7, subnormal at 0), 3 mantissa bits. */
    private static double e4m3(byte code) {
        int v = code & 0xFF, e = (v >> 3) & 0xF, m = v & 7;
        double mag = e == 0 ? m / 8.0 * Math.pow(2, -6) : (1 + m / 8.0) * Math.pow(2, e - 7);
        return (v & 0x80) != 0 ? -mag : mag;
    }

    /** Round to the nearest e4m3fn value (ties to the even code), |v| <= 448 here by construction of s. */
    private static double nearestE4m3(float v) {
        double a = Math.min(Math.abs(v), 448), best = 0;
        for (int c = 0; c <= 0x7E; c++) {
            double e = e4m3((byte) c), dist = Math.abs(e - a), bestDist = Math.abs(best - a);
            if (dist < bestDist || (dist == bestDist && (c & 1) == 0)) {
                best = e;
            }
        }
        return v < 0 ? -best : best;
    }

    private static Tensor bytes(byte[] v, long... shape) {
        Tensor t = Tensor.adopt(CpuMemory.allocate(v.length), DType.FLOAT8_E4M3FN, shape);
        for (int i = 0; i < v.length; i++) t.data().set(ValueLayout.JAVA_BYTE, i, v[i]);
        return t;
    }

    private static Tensor floats(float[] v, long... shape) {
        Tensor t = Tensor.adopt(CpuMemory.allocate(v.length * 4L), DType.FLOAT32, shape);
        for (int i = 0; i < v.length; i++) t.data().setAtIndex(ValueLayout.JAVA_FLOAT, i, v[i]);
        return t;
    }
}
