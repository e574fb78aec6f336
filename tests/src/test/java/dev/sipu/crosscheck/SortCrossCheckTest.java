package dev.sipu.crosscheck;

import dev.sipu.api.DType;
import dev.sipu.api.Device;
import dev.sipu.api.Elements;
import dev.sipu.api.Generator;
import dev.sipu.api.Tensor;
import dev.sipu.dispatch.Dispatcher;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * sort, topk, nonzero, bincount, isin and exponential_ on shapes the recorded cases do not have
 * (rows longer than any SIMD or thread split, a 129280-wide vocabulary, many duplicates and NaNs,
 * transposed inputs), SIPU and CPU against plain references written here: a stable sort of
 * (value, index) pairs with NaN last, and loops for the rest.
 */
class SortCrossCheckTest {
    private static final Dispatcher D = Dispatcher.standard().strict(true);
    private static final Device[] DEVICES = {Device.CPU, Device.SIPU0};

    /** Values with many ties (a small range) and some NaNs. */
    private static double[] tied(SplittableRandom rnd, int n, boolean nans) {
        double[] v = new double[n];
        for (int i = 0; i < n; i++) v[i] = nans && rnd.nextInt(17) == 0 ? Double.NaN : rnd.nextInt(-20, 20) * 0.25;
        return v;
    }

    private static double[] read(Tensor t) {
        try (Tensor h = D.to(t, Device.CPU)) {
            double[] r = new double[(int) h.numel()];
            for (int i = 0; i < r.length; i++) r[i] = h.dtype().isFloatingPoint() ? Elements.getDouble(h, i) : Elements.getLong(h, i);
            return r;
        }
    }

    /** The reference order of one row: stable, NaN above every number. */
    private static Integer[] order(double[] row, boolean desc) {
        Integer[] idx = new Integer[row.length];
        for (int i = 0; i < idx.length; i++) idx[i] = i;
        Comparator<Integer> asc = (a, b) -> Double.compare(row[a] == 0 ? 0.0 : row[a], row[b] == 0 ? 0.0 : row[b]);
        Arrays.sort(idx, desc ? asc.reversed() : asc); // object sort is stable; reversed keeps ties in input order
        return idx;
    }

    @Test
    void sortRowsOfEveryLengthAndDimMatchAStableReference() {
        SplittableRandom rnd = new SplittableRandom(11);
        int rows = 37, n = 1031;
        double[] v = tied(rnd, rows * n, true);
        for (DType t : new DType[] {DType.FLOAT32, DType.BFLOAT16, DType.INT64}) {
            double[] src = t == DType.INT64 ? Arrays.stream(v).map(x -> Double.isNaN(x) ? 7 : Math.floor(x)).toArray() : v;
            for (boolean desc : new boolean[] {false, true}) {
                for (Device dev : DEVICES) {
                    try (Tensor x = AtenCrossCheckTest.tensor(src, t, dev, rows, n);
                         Tensor xt = x.asStrided(new long[] {n, rows}, new long[] {1, n}, 0)) {
                        // along dim 1 of x, and along dim 0 of its transpose (a strided row walk)
                        checkSort(x, rows, n, 1, desc, dev + " " + t + " rows");
                        checkSort(xt, rows, n, 0, desc, dev + " " + t + " transposed");
                    }
                }
            }
        }
    }

    @SuppressWarnings("unchecked")
    private void checkSort(Tensor x, int rows, int n, int dim, boolean desc, String what) {
        List<Tensor> r = (List<Tensor>) D.call("aten::sort.stable", new Object[] {x},
                Map.of("stable", true, "dim", (long) dim, "descending", desc));
        try (Tensor values = r.get(0); Tensor indices = r.get(1);
             Tensor vt = transposed(values, dim); Tensor it = transposed(indices, dim);
             Tensor vc = D.ops().contiguousCopy(vt); Tensor ic = D.ops().contiguousCopy(it)) {
            double[] gv = read(vc), gi = read(ic);
            for (int row = 0; row < rows; row++) {
                double[] rounded = rowOf(x, dim, row, n);
                Integer[] want = order(rounded, desc);
                for (int j = 0; j < n; j++) {
                    assertEquals(want[j], (int) gi[row * n + j], what + " desc=" + desc + " row " + row + " index " + j);
                    assertEquals(rounded[want[j]], gv[row * n + j], 0, what + " value " + j);
                }
            }
        }
    }

    /** The result as [rows, n] whatever its layout: a view, transposed when the sorted dim was 0. */
    private static Tensor transposed(Tensor t, int dim) {
        if (dim == 1) return t.asStrided(t.sizes(), t.strides(), t.offset());
        return t.asStrided(new long[] {t.sizes()[1], t.sizes()[0]}, new long[] {t.strides()[1], t.strides()[0]}, t.offset());
    }

    /** Row `row` of the sorted dim as the device holds it (after rounding to the dtype). */
    private static double[] rowOf(Tensor x, int dim, int row, int n) {
        try (Tensor line = dim == 1 ? x.asStrided(new long[] {n}, new long[] {x.strides()[1]}, x.offset() + row * x.strides()[0])
                : x.asStrided(new long[] {n}, new long[] {x.strides()[0]}, x.offset() + row * x.strides()[1])) {
            return read(line);
        }
    }

    @Test
    @SuppressWarnings("unchecked")
    void topkOverAVocabularyRowPicksTheReferenceSet() {
        SplittableRandom rnd = new SplittableRandom(5);
        int rows = 3, n = 129280;
        double[] v = new double[rows * n];
        for (int i = 0; i < v.length; i++) v[i] = rnd.nextInt(100000) * 1e-3;
        v[n + 17] = Double.NaN; // row 1: NaN counts as the largest
        for (int k : new int[] {8, 100}) {
            for (boolean largest : new boolean[] {true, false}) {
                for (Device dev : DEVICES) {
                    try (Tensor x = AtenCrossCheckTest.tensor(v, DType.FLOAT32, dev, rows, n)) {
                        List<Tensor> r = (List<Tensor>) D.call("aten::topk", x, (long) k, -1L, largest, true);
                        try (Tensor values = r.get(0); Tensor indices = r.get(1)) {
                            double[] gv = read(values), gi = read(indices);
                            for (int row = 0; row < rows; row++) {
                                double[] rv = Arrays.copyOfRange(v, row * n, (row + 1) * n);
                                float[] f = new float[n];
                                for (int i = 0; i < n; i++) f[i] = (float) rv[i];
                                double[] fr = new double[n];
                                for (int i = 0; i < n; i++) fr[i] = f[i];
                                Integer[] want = order(fr, largest);
                                for (int j = 0; j < k; j++) {
                                    assertEquals(want[j], (int) gi[row * k + j], dev + " k=" + k + " largest=" + largest + " row " + row + " #" + j);
                                    assertEquals(fr[want[j]], gv[row * k + j], 0);
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    @Test
    void nonzeroBincountAndIsinMatchLoops() {
        SplittableRandom rnd = new SplittableRandom(3);
        int a = 17, b = 33;
        double[] m = new double[a * b];
        for (int i = 0; i < m.length; i++) m[i] = rnd.nextInt(3) == 0 ? (rnd.nextBoolean() ? Double.NaN : 1.5) : 0;
        List<long[]> want = new ArrayList<>();
        // nonzero of the transpose [b, a]: row-major over the transposed indices
        for (int i = 0; i < b; i++) for (int j = 0; j < a; j++) if (m[j * b + i] != 0) want.add(new long[] {i, j});
        int[] ids = new int[5000];
        long[] counts = new long[300];
        for (int i = 0; i < ids.length; i++) counts[ids[i] = rnd.nextInt(250)]++;
        double[] idsD = Arrays.stream(ids).asDoubleStream().toArray();
        double[] test = {3, 7, 7, 249, -1, 1000};
        for (Device dev : DEVICES) {
            try (Tensor x = AtenCrossCheckTest.tensor(m, DType.FLOAT32, dev, a, b);
                 Tensor xt = x.asStrided(new long[] {b, a}, new long[] {1, b}, 0);
                 Tensor nz = (Tensor) D.call("aten::nonzero", xt)) {
                assertArrayEquals(new long[] {want.size(), 2}, nz.sizes(), dev + " nonzero shape");
                double[] got = read(nz);
                for (int r = 0; r < want.size(); r++) {
                    assertEquals(want.get(r)[0], (long) got[2 * r], dev + " nonzero row " + r);
                    assertEquals(want.get(r)[1], (long) got[2 * r + 1], dev + " nonzero row " + r);
                }
            }
            try (Tensor x = AtenCrossCheckTest.tensor(idsD, DType.INT64, dev, ids.length);
                 Tensor bc = (Tensor) D.call("aten::bincount", x, null, 300L);
                 Tensor t = AtenCrossCheckTest.tensor(test, DType.INT32, dev, test.length);
                 Tensor in = (Tensor) D.call("aten::isin.Tensor_Tensor", x, t)) {
                assertArrayEquals(Arrays.stream(counts).asDoubleStream().toArray(), read(bc), dev + " bincount");
                double[] isin = read(in);
                for (int i = 0; i < ids.length; i++) {
                    boolean w = ids[i] == 3 || ids[i] == 7 || ids[i] == 249;
                    assertEquals(w ? 1 : 0, isin[i], dev + " isin " + i);
                }
            }
        }
    }

    @Test
    void exponentialIsTheSameStreamOnEveryDeviceAndAdvances() {
        int n = 100003;
        double[][] got = new double[2][];
        for (int d = 0; d < DEVICES.length; d++) {
            Generator g = new Generator(42);
            try (Tensor x = AtenCrossCheckTest.tensor(new double[0], DType.FLOAT32, DEVICES[d], n)) {
                D.call("aten::exponential_", new Object[] {x, 2.0}, Map.of("generator", g));
                got[d] = read(x);
                assertEquals(n, g.offset(), "the generator advanced by one draw per element");
            }
        }
        double sum = 0;
        for (int i = 0; i < n; i++) {
            double want = (float) (-Math.log1p(-Generator.uniform(42, i)) / 2.0);
            assertEquals(want, got[0][i], Math.ulp((float) want), "cpu element " + i);
            assertEquals(want, got[1][i], Math.ulp((float) want), "sipu element " + i);
            sum += got[1][i];
        }
        assertEquals(0.5, sum / n, 0.01, "mean of Exp(2)");
    }
}
