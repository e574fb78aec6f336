package dev.sipu.cpu.kernels;

import dev.sipu.api.DType;
import dev.sipu.api.OpArgumentException;
import dev.sipu.api.Tensor;
import dev.sipu.cpu.TestTensors;
import org.junit.jupiter.api.Test;

import static dev.sipu.cpu.TestTensors.assertShape;
import static dev.sipu.cpu.TestTensors.random;
import static dev.sipu.cpu.TestTensors.values;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

/** mm and bmm against a double-precision reference, over dtypes, layouts and block boundaries. */
class MatmulKernelsTest {

    /**
     * out[b] = a[b] @ b[b] in double; each result within the fp32 accumulation bound
     * (2k unit roundoffs of sum |a||b|) plus one rounding to the output dtype; integers exact (wrapped).
     */
    static void check(Tensor a, Tensor b, Tensor out) {
        boolean batched = a.dim() == 3;
        int bs = batched ? (int) a.size(0) : 1;
        int m = (int) a.size(-2), k = (int) a.size(-1), n = (int) b.size(-1);
        DType t = out.dtype();
        assertShape(out, t, batched ? new long[] {bs, m, n} : new long[] {m, n});
        double unit = t == DType.FLOAT64 ? 0x1p-53 : 0x1p-24;
        double[] av = values(a), bv = values(b), got = values(out);
        for (int x = 0; x < bs; x++) {
            for (int i = 0; i < m; i++) {
                for (int j = 0; j < n; j++) {
                    double sum = 0, mag = 0;
                    long isum = 0;
                    for (int p = 0; p < k; p++) {
                        double u = av[(x * m + i) * k + p], v = bv[(x * k + p) * n + j];
                        sum += u * v;
                        mag += Math.abs(u * v);
                        isum += (long) u * (long) v;
                    }
                    double g = got[(x * m + i) * n + j];
                    if (!t.isFloatingPoint()) {
                        double want = ElementwiseKernelsTest.round(t, isum);
                        if (g != want) fail("[" + x + "," + i + "," + j + "] expected " + want + " got " + g);
                        continue;
                    }
                    double tol = 2 * k * unit * mag + TestTensors.ulp(t, sum);
                    if (!(Math.abs(g - sum) <= tol)) {
                        fail(t + " [" + x + "," + i + "," + j + "] of " + m + "x" + k + "x" + n + ": expected " + sum + " got " + g + " (tol " + tol + ")");
                    }
                }
            }
        }
    }

    private static void mm(Tensor a, Tensor b) {
        try (a; b; Tensor out = (Tensor) TestTensors.call("aten::mm", a, b)) {
            check(a, b, out);
        }
    }

    private static void bmm(Tensor a, Tensor b) {
        try (a; b; Tensor out = (Tensor) TestTensors.call("aten::bmm", a, b)) {
            check(a, b, out);
        }
    }

    @Test
    void shapesAcrossBlockAndVectorBoundaries() {
        int[][] shapes = {{1, 1, 1}, {5, 7, 3}, {16, 64, 48}, {4, 17, 33}, {130, 300, 270}, {3, 600, 5}, {129, 1, 257}};
        for (DType t : new DType[] {DType.FLOAT32, DType.BFLOAT16, DType.FLOAT16}) {
            for (int[] s : shapes) mm(random(t, 1, s[0], s[1]), random(t, 2, s[1], s[2]));
        }
        mm(random(DType.FLOAT32, 3, 300, 500), random(DType.FLOAT32, 4, 500, 300));   // large enough for threads
    }

    @Test
    void transposedAndBroadcastOperands() {
        for (DType t : new DType[] {DType.FLOAT32, DType.BFLOAT16, DType.FLOAT64, DType.INT64}) {
            mm(TestTensors.transposed(t, 1, 37, 70), random(t, 2, 70, 19));
            mm(random(t, 3, 37, 70), TestTensors.transposed(t, 4, 70, 19));
            mm(TestTensors.transposed(t, 5, 37, 70), TestTensors.transposed(t, 6, 70, 19));
            try (Tensor col = random(t, 7, 70)) {                      // every column of B the same vector
                mm(random(t, 8, 9, 70), col.asStrided(new long[] {70, 5}, new long[] {1, 0}, 0));
            }
            // decode: one token times a [N, K] weight seen as its transpose
            mm(random(t, 9, 1, 300), TestTensors.transposed(t, 10, 300, 64));
        }
    }

    @Test
    void otherDtypes() {
        for (DType t : new DType[] {DType.FLOAT64, DType.INT64, DType.INT32, DType.INT16, DType.INT8, DType.UINT8}) {
            mm(random(t, 1, 6, 11), random(t, 2, 11, 4));
            bmm(random(t, 3, 2, 6, 11), random(t, 4, 2, 11, 4));
        }
    }

    @Test
    void emptyDimensions() {
        try (Tensor a = random(DType.FLOAT32, 1, 16, 0); Tensor b = random(DType.FLOAT32, 2, 0, 48);
             Tensor out = (Tensor) TestTensors.call("aten::mm", a, b)) {
            assertShape(out, DType.FLOAT32, 16, 48);
            assertArrayEquals(new double[16 * 48], values(out));
        }
        try (Tensor a = random(DType.BFLOAT16, 1, 2, 3, 0); Tensor b = random(DType.BFLOAT16, 2, 2, 0, 4);
             Tensor out = (Tensor) TestTensors.call("aten::bmm", a, b)) {
            assertArrayEquals(new double[24], values(out));
        }
        mm(random(DType.FLOAT32, 3, 0, 64), random(DType.FLOAT32, 4, 64, 48));
        mm(random(DType.FLOAT32, 5, 4, 64), random(DType.FLOAT32, 6, 64, 0));
        bmm(random(DType.FLOAT32, 7, 0, 3, 4), random(DType.FLOAT32, 8, 0, 4, 5));
    }

    @Test
    void batchedWithStridedAndBroadcastBatches() {
        for (DType t : new DType[] {DType.FLOAT32, DType.FLOAT16, DType.BFLOAT16}) {
            bmm(random(t, 1, 3, 16, 64), random(t, 2, 3, 64, 48));
            // attention scores: keys stored [B, N, K], used as [B, K, N]
            bmm(random(t, 3, 4, 1, 64), TestTensors.view(t, 4, 4 * 64 * 10, new long[] {4, 64, 10}, new long[] {640, 1, 64}, 0));
            // one weight for every batch (stride 0)
            try (Tensor w = random(t, 5, 33, 20)) {
                bmm(random(t, 6, 5, 7, 33), w.asStrided(new long[] {5, 33, 20}, new long[] {0, 20, 1}, 0));
            }
            bmm(random(t, 7, 2, 130, 260), random(t, 8, 2, 260, 140));
        }
    }

    @Test
    void errorsAsPyTorchWordsThem() {
        try (Tensor a = random(DType.FLOAT32, 1, 3, 4); Tensor b = random(DType.FLOAT32, 2, 5, 6);
             Tensor h = random(DType.BFLOAT16, 3, 4, 6); Tensor v = random(DType.FLOAT32, 4, 4);
             Tensor bo = random(DType.BOOL, 5, 4, 4); Tensor x = random(DType.FLOAT32, 6, 2, 3, 4);
             Tensor y = random(DType.FLOAT32, 7, 3, 4, 5)) {
            OpArgumentException e = assertThrows(OpArgumentException.class, () -> TestTensors.call("aten::mm", a, b));
            assertTrue(e.getMessage().contains("mat1 and mat2 shapes cannot be multiplied (3x4 and 5x6)"), e.getMessage());
            assertEquals("mat2", e.argument());
            e = assertThrows(OpArgumentException.class, () -> TestTensors.call("aten::mm", a, h));
            assertTrue(e.getMessage().contains("expected m1 and m2 to have the same dtype"), e.getMessage());
            assertEquals("self", assertThrows(OpArgumentException.class, () -> TestTensors.call("aten::mm", v, a)).argument());
            assertThrows(OpArgumentException.class, () -> TestTensors.call("aten::mm", bo, bo));
            e = assertThrows(OpArgumentException.class, () -> TestTensors.call("aten::bmm", x, y));
            assertTrue(e.getMessage().contains("Expected size for first two dimensions of batch2 tensor to be: [2, 4] but got: [3, 4]."), e.getMessage());
            assertThrows(OpArgumentException.class, () -> TestTensors.call("aten::bmm", a, a));
        }
    }
}
