package dev.sipu.cpu.gemm;

import dev.sipu.api.DType;
import dev.sipu.api.Elements;

/**
 * GEMM for the dtypes outside the fp32 kernel: fp64 accumulated in double, integers in long (wrapping
 * as the narrow type's own arithmetic would, then narrowed). Row-major copies of the operands and a
 * plain i-k-j loop over Java arrays: the JIT vectorizes the inner loop, and these dtypes are not on
 * any hot path of LLM inference.
 */
public final class ScalarGemm {
    private ScalarGemm() {}

    public static void multiply(Matrix a, Matrix b, Matrix c, int batches) {
        int m = a.rows(), k = a.cols(), n = b.cols();
        boolean fp = c.dtype() == DType.FLOAT64;
        for (int bi = 0; bi < batches; bi++) {
            if (fp) doubles(a, b, c, bi, m, k, n);
            else longs(a, b, c, bi, m, k, n);
        }
    }

    private static void doubles(Matrix a, Matrix b, Matrix c, int bi, int m, int k, int n) {
        double[] bm = new double[Math.multiplyExact(k, n)];
        for (int p = 0; p < k; p++) {
            for (int j = 0; j < n; j++) bm[p * n + j] = Elements.getDouble(b.memory(), b.at(bi, p, j), b.dtype());
        }
        double[] row = new double[n];
        for (int i = 0; i < m; i++) {
            java.util.Arrays.fill(row, 0);
            for (int p = 0; p < k; p++) {
                double x = Elements.getDouble(a.memory(), a.at(bi, i, p), a.dtype());
                for (int j = 0; j < n; j++) row[j] += x * bm[p * n + j];
            }
            for (int j = 0; j < n; j++) Elements.putDouble(c.memory(), c.at(bi, i, j), c.dtype(), row[j]);
        }
    }

    private static void longs(Matrix a, Matrix b, Matrix c, int bi, int m, int k, int n) {
        long[] bm = new long[Math.multiplyExact(k, n)];
        for (int p = 0; p < k; p++) {
            for (int j = 0; j < n; j++) bm[p * n + j] = Elements.getLong(b.memory(), b.at(bi, p, j), b.dtype());
        }
        long[] row = new long[n];
        for (int i = 0; i < m; i++) {
            java.util.Arrays.fill(row, 0);
            for (int p = 0; p < k; p++) {
                long x = Elements.getLong(a.memory(), a.at(bi, i, p), a.dtype());
                for (int j = 0; j < n; j++) row[j] += x * bm[p * n + j];
            }
            for (int j = 0; j < n; j++) Elements.putLong(c.memory(), c.at(bi, i, j), c.dtype(), row[j]);
        }
    }
}
