package dev.sipu.cpu.kernels;

import dev.sipu.api.DType;
import dev.sipu.api.OpArgumentException;
import dev.sipu.api.Tensor;
import dev.sipu.cpu.TestTensors;
import org.junit.jupiter.api.Test;

import static dev.sipu.cpu.TestTensors.assertClose;
import static dev.sipu.cpu.TestTensors.bytes;
import static dev.sipu.cpu.TestTensors.random;
import static dev.sipu.cpu.TestTensors.values;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

/** _C::rms_norm and _C::silu_and_mul against the reference sketches of SEMANTICS.md §1 and §3. */
class LlmKernelsTest {

    static final DType[] DTYPES = {DType.FLOAT32, DType.BFLOAT16, DType.FLOAT16};

    static double round(DType t, double v) { return ElementwiseKernelsTest.round(t, v); }

    /** x in fp32; inv = rsqrt(mean(x^2) + eps) in fp32; y = round(round(x * inv) * w). */
    static double[] rmsNormReference(Tensor x, Tensor w, double eps) {
        int h = (int) x.size(-1), rows = (int) (x.numel() / Math.max(h, 1));
        DType t = x.dtype();
        double[] xv = values(x), wv = values(w), out = new double[xv.length];
        for (int r = 0; r < rows; r++) {
            double ss = 0;
            for (int i = 0; i < h; i++) ss += xv[r * h + i] * xv[r * h + i];
            float inv = 1f / (float) Math.sqrt((float) ss / h + (float) eps);
            for (int i = 0; i < h; i++) {
                double y = round(t, (float) xv[r * h + i] * inv);
                out[r * h + i] = round(t, (float) y * (float) wv[i]);
            }
        }
        return out;
    }

    /**
     * ulps of the output dtype: the fp32 sum of squares drifts from the reference's double sum with
     * the row length, and in bf16/fp16 a 1-ulp flip of the first rounding is scaled by |w| before
     * the second (up to 3 ulps).
     */
    static double tolerance(DType t, int h) {
        return t == DType.FLOAT32 ? 4 + h / 64.0 : 3;
    }

    static void rmsNorm(Tensor out, Tensor x, Tensor w, double eps) {
        TestTensors.call("_C::rms_norm", out, x, w, eps);
    }

    @Test
    void rmsNormAcrossWidthsRowsAndDtypes() {
        for (DType t : DTYPES) {
            for (int h : new int[] {1, 7, 16, 17, 1000, 5120}) {
                for (int rows : new int[] {1, 3, 40}) {
                    try (Tensor x = random(t, h + rows, rows, h); Tensor w = random(t, h, h); Tensor out = TestTensors.empty(t, rows, h)) {
                        rmsNorm(out, x, w, 1e-6);
                        assertClose(out, rmsNormReference(x, w, 1e-6), tolerance(t, h));
                    } catch (AssertionError e) {
                        throw new AssertionError(t + " rows " + rows + " hidden " + h + ": " + e.getMessage(), e);
                    }
                }
            }
        }
    }

    @Test
    void rmsNormStridedRowsThreeDimsAndZeroRows() {
        for (DType t : DTYPES) {
            // a column slice of a wider tensor: rows 2H apart, the reference reads the same view
            try (Tensor wide = random(t, 1, 7, 128); Tensor x = wide.asStrided(new long[] {7, 64}, new long[] {128, 1}, 64);
                 Tensor w = random(t, 2, 64); Tensor out = TestTensors.empty(t, 7, 64)) {
                rmsNorm(out, x, w, 1e-6);
                assertClose(out, rmsNormReference(x, w, 1e-6), tolerance(t, 64));
            }
            // [3, 4, 64] whose leading dims are permuted: rows are not evenly spaced in memory
            try (Tensor x = TestTensors.view(t, 3, 3 * 4 * 64, new long[] {3, 4, 64}, new long[] {64, 192, 1}, 0);
                 Tensor w = random(t, 4, 64); Tensor out = TestTensors.empty(t, 3, 4, 64)) {
                rmsNorm(out, x, w, 1e-5);
                assertClose(out, rmsNormReference(x, w, 1e-5), tolerance(t, 64));
            }
            try (Tensor x = TestTensors.of(t, new long[] {2, 4}, 0, 0, 0, 0, 1, -2, 3, Double.NaN); Tensor w = random(t, 5, 4);
                 Tensor out = TestTensors.empty(t, 2, 4)) {
                rmsNorm(out, x, w, 1e-6);
                double[] v = values(out);
                for (int i = 0; i < 4; i++) assertEquals(0, v[i], 0.0, "an all-zero row normalizes to (+ or -) 0");
                for (int i = 4; i < 8; i++) assertEquals(Double.NaN, v[i], "NaN spreads over its row");
            }
            try (Tensor x = random(t, 6, 0, 64); Tensor w = random(t, 7, 64); Tensor out = TestTensors.empty(t, 0, 64)) {
                rmsNorm(out, x, w, 1e-6);
            }
        }
    }

    @Test
    void rmsNormErrorsWriteNothing() {
        try (Tensor x = random(DType.FLOAT32, 1, 4, 64); Tensor w = random(DType.FLOAT32, 2, 32); Tensor wh = random(DType.BFLOAT16, 3, 64);
             Tensor w64 = random(DType.FLOAT32, 4, 64); Tensor out = random(DType.FLOAT32, 5, 4, 64);
             Tensor xi = random(DType.INT32, 6, 4, 64); Tensor xt = TestTensors.transposed(DType.FLOAT32, 7, 64, 4);
             Tensor outT = TestTensors.transposed(DType.FLOAT32, 8, 4, 64); Tensor out3 = random(DType.FLOAT32, 9, 4, 63)) {
            byte[] before = bytes(out), beforeT = bytes(outT);
            assertEquals("weight", assertThrows(OpArgumentException.class, () -> rmsNorm(out, x, w, 1e-6)).argument());
            assertEquals("weight", assertThrows(OpArgumentException.class, () -> rmsNorm(out, x, wh, 1e-6)).argument());
            assertEquals("input", assertThrows(OpArgumentException.class, () -> rmsNorm(out, xi, w64, 1e-6)).argument());
            assertEquals("input", assertThrows(OpArgumentException.class, () -> rmsNorm(outT, xt, w64, 1e-6)).argument());
            assertEquals("result", assertThrows(OpArgumentException.class, () -> rmsNorm(outT, x, w64, 1e-6)).argument());
            assertEquals("result", assertThrows(OpArgumentException.class, () -> rmsNorm(out3, x, w64, 1e-6)).argument());
            assertArrayEquals(before, bytes(out));
            assertArrayEquals(beforeT, bytes(outT));
        }
    }

    /** s = round(a / (1 + exp(-a))) in fp32; out = round(s * b). */
    static double[] siluAndMulReference(Tensor x) {
        int twoD = (int) x.size(-1), d = twoD / 2, rows = (int) (x.numel() / Math.max(twoD, 1));
        DType t = x.dtype();
        double[] xv = values(x), out = new double[rows * d];
        for (int r = 0; r < rows; r++) {
            for (int i = 0; i < d; i++) {
                float a = (float) xv[r * twoD + i], b = (float) xv[r * twoD + d + i];
                double s = round(t, a / (1f + (float) Math.exp(-a)));
                out[r * d + i] = round(t, (float) s * b);
            }
        }
        return out;
    }

    @Test
    void siluAndMulAcrossWidthsRowsAndDtypes() {
        for (DType t : DTYPES) {
            for (int d : new int[] {1, 7, 16, 17, 1000, 4096}) {
                for (int rows : new int[] {1, 6, 20}) {
                    try (Tensor x = random(t, d + rows, rows, 2L * d); Tensor out = TestTensors.empty(t, rows, d)) {
                        TestTensors.call("_C::silu_and_mul", out, x);
                        assertClose(out, siluAndMulReference(x), t == DType.FLOAT32 ? 4 : 1);
                    }
                }
            }
            try (Tensor x = random(t, 3, 2, 3, 256); Tensor out = TestTensors.empty(t, 2, 3, 128)) {
                TestTensors.call("_C::silu_and_mul", out, x);
                assertClose(out, siluAndMulReference(x), t == DType.FLOAT32 ? 4 : 1);
            }
            try (Tensor x = TestTensors.of(t, new long[] {1, 6}, -1e4, Double.NEGATIVE_INFINITY, 0, 2, 2, 2);
                 Tensor out = TestTensors.empty(t, 1, 3)) {
                TestTensors.call("_C::silu_and_mul", out, x);
                double[] v = values(out);
                assertEquals(-0.0, v[0], "very negative gate gives -0");
                assertEquals(Double.NaN, v[1], "-inf gate gives NaN");
                assertEquals(0.0, v[2]);
            }
        }
    }

    @Test
    void siluAndMulErrorsWriteNothing() {
        try (Tensor x = random(DType.BFLOAT16, 1, 4, 64); Tensor odd = random(DType.BFLOAT16, 2, 4, 63);
             Tensor out = random(DType.BFLOAT16, 3, 4, 32); Tensor out16 = random(DType.FLOAT16, 4, 4, 32);
             Tensor wrong = random(DType.BFLOAT16, 5, 4, 31)) {
            byte[] before = bytes(out), before16 = bytes(out16);
            assertEquals("input", assertThrows(OpArgumentException.class, () -> TestTensors.call("_C::silu_and_mul", out, odd)).argument());
            assertEquals("result", assertThrows(OpArgumentException.class, () -> TestTensors.call("_C::silu_and_mul", out16, x)).argument());
            assertEquals("result", assertThrows(OpArgumentException.class, () -> TestTensors.call("_C::silu_and_mul", wrong, x)).argument());
            assertArrayEquals(before, bytes(out));
            assertArrayEquals(before16, bytes(out16));
        }
    }
}
