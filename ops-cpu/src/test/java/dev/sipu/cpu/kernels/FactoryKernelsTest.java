package dev.sipu.cpu.kernels;

import dev.sipu.api.DType;
import dev.sipu.api.Device;
import dev.sipu.api.MemoryFormat;
import dev.sipu.api.OpArgumentException;
import dev.sipu.api.Scalar;
import dev.sipu.api.Tensor;
import dev.sipu.cpu.TestTensors;
import org.junit.jupiter.api.Test;

import java.util.HashMap;
import java.util.Map;

import static dev.sipu.cpu.TestTensors.assertShape;
import static dev.sipu.cpu.TestTensors.bytes;
import static dev.sipu.cpu.TestTensors.values;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class FactoryKernelsTest {

    private static Tensor empty(long[] size, Map<String, ?> kwargs) {
        return (Tensor) TestTensors.call("aten::empty.memory_format", new Object[] {size}, kwargs);
    }

    @Test
    void emptyHasTheShapeDtypeAndLayoutAskedFor() {
        try (Tensor a = empty(new long[] {3, 4}, Map.of()); Tensor b = empty(new long[] {0, 7}, Map.of("dtype", DType.BFLOAT16));
             Tensor c = empty(new long[] {2, 3, 4, 5}, Map.of("dtype", DType.INT64, "memory_format", MemoryFormat.CHANNELS_LAST,
                     "device", Device.CPU))) {
            assertShape(a, DType.FLOAT32, 3, 4);
            assertTrue(a.isContiguous());
            assertShape(b, DType.BFLOAT16, 0, 7);
            assertShape(c, DType.INT64, 2, 3, 4, 5);
            assertArrayEquals(new long[] {60, 1, 15, 3}, c.strides());
            assertEquals(120 * 8, c.storage().byteSize());
        }
        try (Tensor s = (Tensor) TestTensors.call("aten::empty_strided", new Object[] {new long[] {3, 4}, new long[] {1, 3}},
                Map.of("dtype", DType.FLOAT16))) {
            assertShape(s, DType.FLOAT16, 3, 4);
            assertArrayEquals(new long[] {1, 3}, s.strides());
            assertEquals(12 * 2, s.storage().byteSize());
        }
    }

    @Test
    void emptyErrors() {
        OpArgumentException e = assertThrows(OpArgumentException.class, () -> empty(new long[] {-1, 3}, Map.of()));
        assertEquals("size", e.argument());
        assertTrue(e.getMessage().contains("negative dimension -1"), e.getMessage());
        assertEquals("memory_format", assertThrows(OpArgumentException.class,
                () -> empty(new long[] {2, 3}, Map.of("memory_format", MemoryFormat.CHANNELS_LAST))).argument());
        assertEquals("stride", assertThrows(OpArgumentException.class,
                () -> TestTensors.call("aten::empty_strided", new long[] {2, 3}, new long[] {1})).argument());
        assertEquals("stride", assertThrows(OpArgumentException.class,
                () -> TestTensors.call("aten::empty_strided", new long[] {2, 3}, new long[] {-1, 1})).argument());
    }

    private static Tensor arange(Scalar start, Scalar end, Scalar step, DType dtype) {
        Map<String, Object> kw = new HashMap<>();
        if (dtype != null) kw.put("dtype", dtype);
        return (Tensor) TestTensors.call("aten::arange.start_step", new Object[] {start, end, step}, kw);
    }

    private static void expect(Tensor t, DType dtype, double... v) {
        try (t) {
            assertShape(t, dtype, v.length);
            assertArrayEquals(v, values(t), t.toString());
        }
    }

    @Test
    void arangeSizesDtypesAndValues() {
        expect((Tensor) TestTensors.call("aten::arange", Scalar.of(5L)), DType.INT64, 0, 1, 2, 3, 4);
        expect((Tensor) TestTensors.call("aten::arange", Scalar.of(2.5)), DType.FLOAT32, 0, 1, 2);
        expect((Tensor) TestTensors.call("aten::arange", new Object[] {Scalar.of(3L)}, Map.of("dtype", DType.FLOAT64)), DType.FLOAT64, 0, 1, 2);
        expect(arange(Scalar.of(0L), Scalar.of(16L), Scalar.of(2L), null), DType.INT64, 0, 2, 4, 6, 8, 10, 12, 14);
        expect(arange(Scalar.of(10L), Scalar.of(0L), Scalar.of(-3L), null), DType.INT64, 10, 7, 4, 1);
        expect(arange(Scalar.of(0.0), Scalar.of(1.0), Scalar.of(0.125), null), DType.FLOAT32, 0, .125, .25, .375, .5, .625, .75, .875);
        expect(arange(Scalar.of(true), Scalar.of(3L), Scalar.of(1L), null), DType.INT64, 1, 2);
        // A count of ceil((end - start) / step), values start + i*step rounded once (fp32 through double).
        expect(arange(Scalar.of(0L), Scalar.of(1L), Scalar.of(0.3), null), DType.FLOAT32, 0, (float) 0.3, (float) 0.6, (float) (3 * 0.3));
        // Integer dtypes truncate float bounds first; int64 counts in integers, the others in double.
        expect(arange(Scalar.of(0.5), Scalar.of(5L), Scalar.of(1L), DType.INT64), DType.INT64, 0, 1, 2, 3, 4);
        expect(arange(Scalar.of(0.5), Scalar.of(5L), Scalar.of(1L), DType.INT32), DType.INT32, 0, 1, 2, 3, 4);
        expect(arange(Scalar.of(-3L), Scalar.of(3L), Scalar.of(2L), DType.INT8), DType.INT8, -3, -1, 1);
        // bf16 values are computed in fp32 and rounded once: 257 is not a bf16 value.
        try (Tensor t = arange(Scalar.of(255L), Scalar.of(259L), Scalar.of(1L), DType.BFLOAT16)) {
            assertArrayEquals(new double[] {255, 256, 256, 258}, values(t));
        }
        expect(arange(Scalar.of(3L), Scalar.of(3L), Scalar.of(1L), DType.FLOAT32), DType.FLOAT32);
        // rope frequencies: arange(0, 32, 2) / 32 in fp32
        try (Tensor t = arange(Scalar.of(0L), Scalar.of(32L), Scalar.of(2L), DType.FLOAT32)) {
            double[] v = values(t);
            assertEquals(16, v.length);
            for (int i = 0; i < 16; i++) assertEquals(2.0 * i, v[i]);
        }
    }

    @Test
    void arangeErrors() {
        assertEquals("step", assertThrows(OpArgumentException.class,
                () -> arange(Scalar.of(0L), Scalar.of(5L), Scalar.of(0L), null)).argument());
        assertEquals("step", assertThrows(OpArgumentException.class,
                () -> arange(Scalar.of(0L), Scalar.of(5L), Scalar.of(0.5), DType.INT64)).argument());   // truncates to 0
        OpArgumentException sign = assertThrows(OpArgumentException.class, () -> arange(Scalar.of(0L), Scalar.of(5L), Scalar.of(-1L), null));
        assertTrue(sign.getMessage().contains("upper bound and larger bound inconsistent with step sign"), sign.getMessage());
        assertThrows(OpArgumentException.class, () -> arange(Scalar.of(0.0), Scalar.of(Double.POSITIVE_INFINITY), Scalar.of(1L), null));
        assertThrows(OpArgumentException.class, () -> arange(Scalar.of(0L), Scalar.of(5L), Scalar.of(1L), DType.BOOL));
        assertThrows(OpArgumentException.class, () -> TestTensors.call("aten::arange", Scalar.of(-1L)));
    }

    @Test
    void arangeOutWritesTheGivenTensorOrRefusesAWrongShape() {
        try (Tensor out = TestTensors.empty(DType.FLOAT32, 4)) {
            Object r = TestTensors.call("aten::arange.start_out", new Object[] {Scalar.of(1.0), Scalar.of(2.0), Scalar.of(0.25)}, Map.of("out", out));
            assertSame(out, r);
            assertArrayEquals(new double[] {1, 1.25, 1.5, 1.75}, values(out));
        }
        try (Tensor base = TestTensors.of(DType.INT64, new long[] {10}, new double[10]);
             Tensor out = base.asStrided(new long[] {5}, new long[] {2}, 0)) {
            TestTensors.call("aten::arange.start_out", new Object[] {Scalar.of(0L), Scalar.of(5L), Scalar.of(1L)}, Map.of("out", out));
            assertArrayEquals(new double[] {0, 0, 1, 0, 2, 0, 3, 0, 4, 0}, values(base));
        }
        try (Tensor out = TestTensors.random(DType.INT64, 1, 3)) {
            byte[] before = bytes(out);
            OpArgumentException e = assertThrows(OpArgumentException.class, () -> TestTensors.call("aten::arange.start_out",
                    new Object[] {Scalar.of(0L), Scalar.of(5L), Scalar.of(1L)}, Map.of("out", out)));
            assertEquals("out", e.argument());
            assertArrayEquals(before, bytes(out));
        }
    }
}
