package dev.sipu.crosscheck;

import dev.sipu.api.DType;
import dev.sipu.api.Device;
import dev.sipu.api.OpArgumentException;
import dev.sipu.api.Tensor;
import dev.sipu.dispatch.Dispatcher;
import org.junit.jupiter.api.Test;

import java.util.Map;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

/**
 * mm.dtype (bf16 in, fp32 out) and _scaled_mm (float8 in, tensor-wise and row-wise scales, bias,
 * out_dtype) on odd shapes, SIPU and CPU against a double-precision reference of the same formula.
 * _scaled_mm has no recorded case (PyTorch 2.11 has no CPU kernel for it), so this is its check.
 */
class ScaledMatmulTest {
    private static final Dispatcher D = Dispatcher.standard().strict(true);
    private static final Device[] DEVICES = {Device.CPU, Device.SIPU0};

    /** Values exactly representable in e4m3 and bf16: multiples of 1/8 within [-2, 2] (three mantissa bits). */
    private static double[] grid(SplittableRandom rnd, int n) {
        double[] v = new double[n];
        for (int i = 0; i < n; i++) v[i] = rnd.nextInt(-16, 17) / 8.0;
        return v;
    }

    private static double[] product(double[] a, double[] b, int m, int k, int n) {
        double[] r = new double[m * n];
        for (int i = 0; i < m; i++)
            for (int j = 0; j < n; j++) {
                double s = 0;
                for (int p = 0; p < k; p++) s += a[i * k + p] * b[p * n + j];
                r[i * n + j] = s;
            }
        return r;
    }

    @Test
    void mmDtypeAccumulatesBf16InFloat32() {
        SplittableRandom rnd = new SplittableRandom(1);
        int m = 37, k = 129, n = 67;
        double[] a = grid(rnd, m * k), b = grid(rnd, k * n), want = product(a, b, m, k, n);
        for (Device dev : DEVICES) {
            try (Tensor ta = AtenCrossCheckTest.tensor(a, DType.BFLOAT16, dev, m, k);
                 Tensor tb = AtenCrossCheckTest.tensor(b, DType.BFLOAT16, dev, k, n);
                 Tensor out = (Tensor) D.call("aten::mm.dtype", ta, tb, DType.FLOAT32)) {
                assertEquals(DType.FLOAT32, out.dtype());
                // grid products are exact in fp32 and the sums stay far below 2^24 eighths: exact
                AtenCrossCheckTest.check("mm.dtype on " + dev, want, out, 0);
                assertThrows(OpArgumentException.class, () -> D.call("aten::mm.dtype", ta, tb, DType.FLOAT16));
            }
        }
    }

    @Test
    void decodeSizedProductsMatchForRowMajorAndTransposedWeights() {
        SplittableRandom rnd = new SplittableRandom(3);
        int k = 333, n = 517;
        for (int m : new int[] {1, 5, 16}) {
            double[] a = grid(rnd, m * k), w = grid(rnd, n * k); // w [n, k] as a linear's weight
            double[] wt = new double[k * n];
            for (int j = 0; j < n; j++) for (int p = 0; p < k; p++) wt[p * n + j] = w[j * k + p];
            double[] want = product(a, wt, m, k, n);
            for (DType t : new DType[] {DType.FLOAT32, DType.BFLOAT16}) {
                for (Device dev : DEVICES) {
                    try (Tensor ta = AtenCrossCheckTest.tensor(a, t, dev, m, k);
                         Tensor rowMajor = AtenCrossCheckTest.tensor(wt, t, dev, k, n);
                         Tensor weight = AtenCrossCheckTest.tensor(w, t, dev, n, k);
                         Tensor transposed = weight.asStrided(new long[] {k, n}, new long[] {1, k}, 0);
                         Tensor r1 = D.ops().mm(ta, rowMajor); Tensor r2 = D.ops().mm(ta, transposed)) {
                        // grid products are exact and the sums small: f32 is exact, bf16 rounds once
                        double tol = t == DType.FLOAT32 ? 0 : 1.0 / 128;
                        AtenCrossCheckTest.check("M=" + m + " " + t + " row-major B on " + dev, want, r1, tol);
                        AtenCrossCheckTest.check("M=" + m + " " + t + " transposed B on " + dev, want, r2, tol);
                    }
                }
            }
        }
    }

    @Test
    void scaledMmAppliesScalesAndBiasBeforeRounding() {
        SplittableRandom rnd = new SplittableRandom(2);
        int m = 19, k = 160, n = 45;
        double[] a = grid(rnd, m * k), b = grid(rnd, k * n), p = product(a, b, m, k, n);
        double[] sa = new double[m], sb = new double[n], bias = grid(rnd, n);
        for (int i = 0; i < m; i++) sa[i] = 0.5 + rnd.nextInt(8) / 16.0;
        for (int j = 0; j < n; j++) sb[j] = 0.25 + rnd.nextInt(8) / 32.0;
        for (Device dev : DEVICES) {
            try (Tensor ta = AtenCrossCheckTest.tensor(a, DType.FLOAT8_E4M3FN, dev, m, k);
                 Tensor tb = AtenCrossCheckTest.tensor(b, DType.FLOAT8_E4M3FN, dev, k, n);
                 Tensor rowA = AtenCrossCheckTest.tensor(sa, DType.FLOAT32, dev, m, 1);
                 Tensor rowB = AtenCrossCheckTest.tensor(sb, DType.FLOAT32, dev, 1, n);
                 Tensor one = AtenCrossCheckTest.tensor(new double[] {0.75}, DType.FLOAT32, dev);
                 Tensor tbias = AtenCrossCheckTest.tensor(bias, DType.BFLOAT16, dev, n);
                 Tensor rowwise = (Tensor) D.call("aten::_scaled_mm", new Object[] {ta, tb, rowA, rowB},
                         Map.of("bias", tbias, "out_dtype", DType.FLOAT32));
                 Tensor tensorwise = (Tensor) D.call("aten::_scaled_mm", new Object[] {ta, tb, one, one},
                         Map.of("out_dtype", DType.BFLOAT16))) {
                double[] wantRow = new double[m * n], wantTensor = new double[m * n];
                for (int i = 0; i < m; i++)
                    for (int j = 0; j < n; j++) {
                        wantRow[i * n + j] = p[i * n + j] * sa[i] * sb[j] + bias[j];
                        wantTensor[i * n + j] = p[i * n + j] * 0.75 * 0.75;
                    }
                AtenCrossCheckTest.check("row-wise _scaled_mm on " + dev, wantRow, rowwise, 1e-6);
                assertEquals(DType.BFLOAT16, tensorwise.dtype());
                AtenCrossCheckTest.check("tensor-wise _scaled_mm to bf16 on " + dev, wantTensor, tensorwise, 1.0 / 128);
                assertThrows(OpArgumentException.class, () -> D.call("aten::_scaled_mm", ta, tb, rowB, rowA));
            }
        }
    }
}
