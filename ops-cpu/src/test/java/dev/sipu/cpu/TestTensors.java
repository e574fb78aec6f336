package dev.sipu.cpu;

import dev.sipu.api.CpuMemory;
import dev.sipu.api.DType;
import dev.sipu.api.Elements;
import dev.sipu.api.Shapes;
import dev.sipu.api.Tensor;
import dev.sipu.dispatch.Dispatcher;
import dev.sipu.dispatch.spi.OpProvider;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.fail;

/** Building and reading CPU tensors in tests, and a dispatcher with only the CPU module. */
public final class TestTensors {
    private TestTensors() {}

    public static final Dispatcher CPU = Dispatcher.create(List.of(new CpuModule()), List.of());

    /** A dispatcher with the CPU module and extra (test-only) providers. */
    public static Dispatcher with(OpProvider... providers) {
        return Dispatcher.create(List.of(new CpuModule()), List.of(providers));
    }

    public static Object call(String op, Object... args) { return CPU.call(op, args); }

    public static Object call(String op, Object[] args, Map<String, ?> kwargs) { return CPU.call(op, args, kwargs); }

    public static Tensor empty(DType t, long... shape) {
        return Tensor.adopt(CpuMemory.allocate(Shapes.numel(shape) * t.itemSize()), t, shape);
    }

    /** A contiguous tensor holding {@code values} converted to {@code t} (integers exactly). */
    public static Tensor of(DType t, long[] shape, double... values) {
        Tensor x = empty(t, shape);
        if (values.length != x.numel()) throw new IllegalArgumentException(values.length + " values for " + x);
        for (int i = 0; i < values.length; i++) put(x, i, values[i]);
        return x;
    }

    public static Tensor scalar(DType t, double v) { return of(t, new long[0], v); }

    /** Values exactly representable in {@code t}: normal(0, scale) rounded for floats, small integers otherwise. */
    public static Tensor random(DType t, long seed, long... shape) {
        Tensor x = empty(t, shape);
        SplittableRandom r = new SplittableRandom(seed);
        for (long i = 0; i < x.numel(); i++) put(x, i, sample(t, r));
        return x;
    }

    public static double sample(DType t, SplittableRandom r) {
        if (t.isBool()) return r.nextBoolean() ? 1 : 0;
        if (t == DType.UINT8) return r.nextInt(256);
        if (t.isIntegral()) return r.nextInt(-100, 100);
        return gaussian(r) * 2;
    }

    private static double gaussian(SplittableRandom r) {
        double u = r.nextDouble(), v = r.nextDouble();
        return Math.sqrt(-2 * Math.log(1 - u)) * Math.cos(2 * Math.PI * v);
    }

    /** A view of a fresh storage of {@code storageElems} elements with the given geometry, filled with random values. */
    public static Tensor view(DType t, long seed, long storageElems, long[] sizes, long[] strides, long offset) {
        try (Tensor base = random(t, seed, storageElems)) {
            return base.asStrided(sizes, strides, offset);
        }
    }

    /** [rows, cols] stored column-major: the transpose of a contiguous [cols, rows]. */
    public static Tensor transposed(DType t, long seed, long rows, long cols) {
        return view(t, seed, rows * cols, new long[] {rows, cols}, new long[] {1, rows}, 0);
    }

    public static void put(Tensor x, long i, double v) {
        MemorySegment m = x.storage().memory();
        long at = Elements.byteOffsetOf(x, i);
        if (x.dtype().isFloatingPoint()) Elements.putDouble(m, at, x.dtype(), v);
        else Elements.putLong(m, at, x.dtype(), (long) v);
    }

    public static double get(Tensor x, long i) { return Elements.getDouble(x, i); }

    /** Every element in row-major order, as doubles. */
    public static double[] values(Tensor x) {
        double[] out = new double[Math.toIntExact(x.numel())];
        for (int i = 0; i < out.length; i++) out[i] = Elements.getDouble(x, i);
        return out;
    }

    /** The raw bytes of a tensor's whole storage, to check that a failed call wrote nothing. */
    public static byte[] bytes(Tensor x) {
        return x.storage().memory().toArray(ValueLayout.JAVA_BYTE);
    }

    /** Spacing of values of {@code t} near {@code v} (one unit in the last place). */
    public static double ulp(DType t, double v) {
        double a = Math.max(Math.abs(v), Double.MIN_NORMAL);
        return switch (t) {
            case FLOAT64 -> Math.ulp(a);
            case FLOAT32 -> Math.ulp((float) a);
            case BFLOAT16 -> Math.max(Math.ulp((float) a) * 65536, 0x1p-133);
            case FLOAT16 -> Math.max(Math.ulp((float) a) * 8192, 0x1p-24);
            default -> 1;
        };
    }

    /**
     * actual within {@code ulps} units of {@code t} of expected, element by element (NaN where
     * expected is NaN, infinities equal); integer dtypes exactly.
     */
    public static void assertClose(Tensor actual, double[] expected, double ulps) {
        double[] got = values(actual);
        assertEquals(expected.length, got.length, "numel");
        DType t = actual.dtype();
        for (int i = 0; i < got.length; i++) {
            double e = expected[i], g = got[i];
            if (Double.isNaN(e) || Double.isInfinite(e) || !t.isFloatingPoint()) {
                if (Double.compare(e, g) != 0 && !(e == g)) fail("element " + i + ": expected " + e + " but got " + g + " (" + actual + ")");
                continue;
            }
            double tol = ulps * ulp(t, e);
            if (!(Math.abs(g - e) <= tol)) {
                fail("element " + i + ": expected " + e + " but got " + g + " (diff " + Math.abs(g - e) + " > " + tol + ", " + actual + ")");
            }
        }
    }

    public static void assertShape(Tensor t, DType dtype, long... shape) {
        assertEquals(dtype, t.dtype(), "dtype of " + t);
        assertArrayEquals(shape, t.sizes(), "shape of " + t);
    }
}
