package dev.sipu.cpu.kernels;

import dev.sipu.api.Conversions;
import dev.sipu.api.DType;
import dev.sipu.api.Elements;
import dev.sipu.api.OpArgumentException;
import dev.sipu.api.Scalar;
import dev.sipu.api.Tensor;
import dev.sipu.cpu.TestTensors;
import dev.sipu.dispatch.meta.Broadcast;
import org.junit.jupiter.api.Test;

import java.lang.foreign.MemorySegment;
import java.util.SplittableRandom;

import static dev.sipu.cpu.TestTensors.bytes;
import static dev.sipu.cpu.TestTensors.of;
import static dev.sipu.cpu.TestTensors.random;
import static dev.sipu.cpu.TestTensors.values;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;

/** copy_ between every pair of dtypes and layouts, fill_ and zero_. */
class CopyFillTest {

    /**
     * The conversion PyTorch applies to one element, written out per case: floats narrow through
     * fp32 and truncate to integers (x86 semantics), integers wrap or convert with one rounding.
     */
    static void convertReference(DType s, MemorySegment src, long from, DType d, MemorySegment dst, long to) {
        if (s == d) {
            MemorySegment.copy(src, from, dst, to, s.itemSize());
        } else if (s.isFloatingPoint()) {
            Elements.putDouble(dst, to, d, Elements.getDouble(src, from, s));
        } else if (d == DType.FLOAT64) {
            Elements.putDouble(dst, to, d, Elements.getLong(src, from, s));
        } else if (d.isFloatingPoint()) {
            Elements.putDouble(dst, to, d, (float) Elements.getLong(src, from, s));
        } else {
            Elements.putLong(dst, to, d, Elements.getLong(src, from, s));
        }
    }

    /** Values that exercise the conversions: fractions, ties, large and negative numbers, inf and NaN. */
    static Tensor interesting(DType t, int n, long seed) {
        SplittableRandom r = new SplittableRandom(seed);
        double[] special = {0, -0.0, 1, -1, 0.5, 1.5, 2.5, -2.5, 255, 256, -129, 127.9, 300.7, 65504, 70000, 1e10, -1e10,
                Double.POSITIVE_INFINITY, Double.NEGATIVE_INFINITY, Double.NaN, 1e-3, 3.0e-8, 448, 500};
        double[] v = new double[n];
        for (int i = 0; i < n; i++) {
            v[i] = i < special.length ? special[i] : r.nextDouble(-1000, 1000) * (r.nextBoolean() ? 1 : 0.001);
            if (!t.isFloatingPoint() && !Double.isFinite(v[i])) v[i] = 7;
            if (t == DType.FLOAT8_E4M3FN && Math.abs(v[i]) > 448) v[i] = Math.signum(v[i]) * 448;
        }
        return of(t, new long[] {n}, v);
    }

    @Test
    void everyDtypePairConvertsLikePyTorch() {
        for (DType s : DType.values()) {
            for (DType d : DType.values()) {
                for (int n : new int[] {1, 17, 1000, 70_000}) {
                    try (Tensor src = interesting(s, n, n); Tensor dst = TestTensors.empty(d, n);
                         Tensor expect = TestTensors.empty(d, n)) {
                        MemorySegment sm = src.storage().memory(), em = expect.storage().memory();
                        for (int i = 0; i < n; i++) convertReference(s, sm, (long) i * s.itemSize(), d, em, (long) i * d.itemSize());
                        assertSame(dst, TestTensors.call("aten::copy_", dst, src));
                        assertArrayEquals(bytes(expect), bytes(dst), s + " -> " + d + " [" + n + "]");
                    }
                }
            }
        }
    }

    @Test
    void stridedBroadcastAndTransposedLayouts() {
        for (DType s : new DType[] {DType.FLOAT32, DType.BFLOAT16, DType.FLOAT16, DType.INT64, DType.FLOAT64}) {
            for (DType d : new DType[] {DType.FLOAT32, DType.BFLOAT16, DType.INT32}) {
                check(TestTensors.transposed(d, 1, 33, 18), random(s, 2, 33, 18));          // transposed dst
                check(TestTensors.empty(d, 33, 18), TestTensors.transposed(s, 3, 33, 18));  // transposed src
                check(TestTensors.empty(d, 5, 18), random(s, 4, 18));                       // broadcast row
                check(TestTensors.empty(d, 5, 18), random(s, 5));                           // 0-dim src
                check(TestTensors.empty(d), random(s, 6));                                  // 0-dim both
                check(TestTensors.empty(d, 0, 18), random(s, 7, 18));                       // empty
                try (Tensor wide = TestTensors.empty(d, 10, 40)) {                           // strided slice of dst
                    check(wide.asStrided(new long[] {10, 13}, new long[] {40, 3}, 1), random(s, 8, 10, 13));
                }
            }
        }
    }

    private static void check(Tensor dst, Tensor src) {
        try (dst; src; Tensor e = Broadcast.expand(src, dst.sizes())) {
            TestTensors.call("aten::copy_", dst, src);
            double[] want = values(e), got = values(dst);
            for (int i = 0; i < want.length; i++) {
                try (Tensor one = TestTensors.empty(dst.dtype()); Tensor w = of(src.dtype(), new long[0], want[i])) {
                    TestTensors.call("aten::copy_", one, w);
                    assertEquals(values(one)[0], got[i], dst + " <- " + src + " at " + i);
                }
            }
        }
    }

    @Test
    void overlappingSourceIsReadBeforeWriting() {
        // src = elements 0, 2, 4, 6 and dst = elements 2, 4, 6, 8 of one storage: a shift that a
        // front-to-back loop would smear. PyTorch cannot judge strided overlap ("too hard") and lets it through.
        try (Tensor base = of(DType.FLOAT32, new long[] {9}, 0, 1, 2, 3, 4, 5, 6, 7, 8)) {
            try (Tensor src = base.asStrided(new long[] {4}, new long[] {2}, 0);
                 Tensor dst = base.asStrided(new long[] {4}, new long[] {2}, 2)) {
                TestTensors.call("aten::copy_", dst, src);
                assertArrayEquals(new double[] {0, 1, 0, 3, 2, 5, 4, 7, 6}, values(base));
            }
            // The very same view: a no-op.
            try (Tensor v = base.asStrided(new long[] {9}, new long[] {1}, 0)) {
                byte[] before = bytes(base);
                TestTensors.call("aten::copy_", base, v);
                assertArrayEquals(before, bytes(base));
            }
        }
        // A bitcast view of the same memory converts in place, element by element.
        try (Tensor f = of(DType.INT32, new long[] {3}, 1, 2, 3); Tensor same = f.viewAs(DType.FLOAT32)) {
            TestTensors.call("aten::copy_", same, f);
            assertArrayEquals(new double[] {1, 2, 3}, values(same));
        }
    }

    @Test
    void copyErrorsLeaveTheDestinationUntouched() {
        try (Tensor dst = random(DType.FLOAT32, 1, 3, 4); Tensor bad = random(DType.FLOAT32, 2, 2, 4);
             Tensor big = random(DType.FLOAT32, 3, 2, 3, 4); Tensor row = random(DType.FLOAT32, 4, 4);
             Tensor expanded = row.asStrided(new long[] {3, 4}, new long[] {0, 1}, 0)) {
            byte[] before = bytes(dst), rowBefore = bytes(row);
            assertEquals("src", assertThrows(OpArgumentException.class, () -> TestTensors.call("aten::copy_", dst, bad)).argument());
            assertEquals("self", assertThrows(OpArgumentException.class, () -> TestTensors.call("aten::copy_", dst, big)).argument());
            assertEquals("self", assertThrows(OpArgumentException.class, () -> TestTensors.call("aten::copy_", expanded, dst)).argument());
            assertArrayEquals(before, bytes(dst));
            assertArrayEquals(rowBefore, bytes(row));
            // Dense views that partially overlap: PyTorch refuses.
            try (Tensor a = dst.asStrided(new long[] {8}, new long[] {1}, 0); Tensor b = dst.asStrided(new long[] {8}, new long[] {1}, 4)) {
                assertThrows(OpArgumentException.class, () -> TestTensors.call("aten::copy_", a, b));
                assertArrayEquals(before, bytes(dst));
            }
        }
    }

    // ---- fill_ and zero_ ---------------------------------------------------------------------

    @Test
    void fillConvertsTheScalarOnceAndWritesEveryElement() {
        for (DType t : DType.values()) {
            for (Scalar v : new Scalar[] {Scalar.of(3L), Scalar.of(1.7), Scalar.of(true), Scalar.of(-2L)}) {
                if (t == DType.UINT8 && v.toLong() < 0) continue;
                try (Tensor x = random(t, 1, 70_001); Tensor one = TestTensors.empty(t)) {
                    TestTensors.call("aten::fill_.Scalar", x, v);
                    MemorySegment m = one.storage().memory();
                    if (t.isFloatingPoint()) Elements.putDouble(m, 0, t, v.toDouble());
                    else Elements.putLong(m, 0, t, v.isFloatingPoint() ? (long) v.toDouble() : v.toLong());
                    double want = values(one)[0];
                    for (double g : values(x)) assertEquals(want, g, t + " fill " + v);
                }
            }
        }
        // bf16 fill of 0.1 is bf16(0.1), through fp32
        try (Tensor x = TestTensors.empty(DType.BFLOAT16, 3)) {
            TestTensors.call("aten::fill_.Scalar", x, Scalar.of(0.1));
            assertEquals(Conversions.bf16ToFloat(Conversions.floatToBf16(0.1f)), values(x)[0]);
        }
    }

    @Test
    void fillAndZeroOnStridedAndBroadcastViews() {
        try (Tensor base = of(DType.FLOAT32, new long[] {4, 6}, new double[24]);
             Tensor cols = base.asStrided(new long[] {4, 3}, new long[] {6, 2}, 1)) {
            TestTensors.call("aten::fill_.Scalar", cols, Scalar.of(-1.0));
            double[] v = values(base);
            for (int i = 0; i < 24; i++) assertEquals(i % 2 == 1 ? -1 : 0, v[i], "element " + i);
            TestTensors.call("aten::zero_", cols);
            assertArrayEquals(new double[24], values(base));
        }
        // fill is idempotent, so PyTorch allows a broadcast (self-overlapping) target
        try (Tensor row = of(DType.INT64, new long[] {3}, 1, 2, 3); Tensor wide = row.asStrided(new long[] {5, 3}, new long[] {0, 1}, 0)) {
            TestTensors.call("aten::fill_.Scalar", wide, Scalar.of(9L));
            assertArrayEquals(new double[] {9, 9, 9}, values(row));
        }
        try (Tensor x = random(DType.BFLOAT16, 2, 3, 5); Tensor v = of(DType.FLOAT64, new long[0], 2.5)) {
            TestTensors.call("aten::fill_.Tensor", x, v);
            for (double g : values(x)) assertEquals(2.5, g);
        }
    }

    @Test
    void fillRejectsValuesTheDtypeCannotHold() {
        record Bad(DType t, Scalar v) {}
        for (Bad b : new Bad[] {new Bad(DType.INT8, Scalar.of(300L)), new Bad(DType.UINT8, Scalar.of(-300L)),
                new Bad(DType.UINT8, Scalar.of(-1.0)), new Bad(DType.INT32, Scalar.of(Double.NaN)),
                new Bad(DType.FLOAT16, Scalar.of(1e6)), new Bad(DType.FLOAT32, Scalar.of(1e300)),
                new Bad(DType.FLOAT8_E4M3FN, Scalar.of(Double.POSITIVE_INFINITY))}) {
            try (Tensor x = random(b.t(), 1, 4)) {
                byte[] before = bytes(x);
                OpArgumentException e = assertThrows(OpArgumentException.class, () -> TestTensors.call("aten::fill_.Scalar", x, b.v()), b.toString());
                assertEquals("value", e.argument());
                assertArrayEquals(before, bytes(x));
            }
        }
        // what does fit: -1 wraps into uint8, infinity into fp16, any value into bool
        try (Tensor u = TestTensors.empty(DType.UINT8, 2); Tensor h = TestTensors.empty(DType.FLOAT16, 1); Tensor b = TestTensors.empty(DType.BOOL, 1)) {
            TestTensors.call("aten::fill_.Scalar", u, Scalar.of(-1L));
            TestTensors.call("aten::fill_.Scalar", h, Scalar.of(Double.NEGATIVE_INFINITY));
            TestTensors.call("aten::fill_.Scalar", b, Scalar.of(5L));
            assertArrayEquals(new double[] {255, 255}, values(u));
            assertArrayEquals(new double[] {Double.NEGATIVE_INFINITY}, values(h));
            assertArrayEquals(new double[] {1}, values(b));
        }
        try (Tensor x = random(DType.FLOAT32, 1, 4); Tensor v = random(DType.FLOAT32, 2, 1)) {
            assertThrows(OpArgumentException.class, () -> TestTensors.call("aten::fill_.Tensor", x, v));
        }
    }
}
