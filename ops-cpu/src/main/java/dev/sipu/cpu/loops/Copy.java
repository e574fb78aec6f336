package dev.sipu.cpu.loops;

import dev.sipu.api.CpuMemory;
import dev.sipu.api.DType;
import dev.sipu.api.Elements;
import dev.sipu.api.Tensor;
import dev.sipu.cpu.iter.RunLoop;
import dev.sipu.cpu.iter.TensorIter;
import dev.sipu.cpu.simd.Floats;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/**
 * Copies between CPU tensors of one shape with any strides and dtypes, converting as PyTorch does:
 * same dtype moves bytes (bit patterns, NaN payloads included); among fp32, fp16, bf16 and fp8 the
 * values go through fp32 lanes (exact widening, one rounding to nearest even); from fp64 a double
 * reaches the narrow floats through fp32 and the integers by truncation; integers convert directly.
 */
public final class Copy {
    private Copy() {}

    private static final ValueLayout.OfShort I16 = ValueLayout.JAVA_SHORT_UNALIGNED;
    private static final ValueLayout.OfInt I32 = ValueLayout.JAVA_INT_UNALIGNED;
    private static final ValueLayout.OfLong I64 = ValueLayout.JAVA_LONG_UNALIGNED;

    /** dst = src, element by element; the caller rules out overlap between them. */
    public static void copy(Tensor dst, Tensor src) {
        TensorIter it = TensorIter.of(dst, src);
        DType d = dst.dtype(), s = src.dtype();
        if (d == s) {
            int item = d.itemSize();
            it.forEach(() -> (data, off, st, n) -> bytes(item, data, off, st, n));
        } else if (viaFloat(d) && viaFloat(s)) {
            it.forEach(() -> {
                float[] tile = new float[Pointwise.TILE];
                return (data, off, st, n) -> {
                    for (long t = 0; t < n; t += tile.length) {
                        int len = (int) Math.min(tile.length, n - t);
                        Floats.load(s, data[1], off[1] + t * st[1], st[1], tile, 0, len);
                        Floats.store(tile, 0, len, d, data[0], off[0] + t * st[0], st[0]);
                    }
                };
            });
        } else {
            RunLoop convert = (data, off, st, n) -> {
                for (long i = 0; i < n; i++) convert(s, data[1], off[1] + i * st[1], d, data[0], off[0] + i * st[0]);
            };
            it.forEach(() -> convert);
        }
    }

    /** A new contiguous CPU copy of {@code t}. */
    public static Tensor contiguous(Tensor t) {
        Tensor out = Tensor.adopt(CpuMemory.allocate(t.numel() * t.dtype().itemSize()), t.dtype(), t.sizes());
        copy(out, t);
        return out;
    }

    /** Dtypes whose every value is exact in fp32. */
    private static boolean viaFloat(DType t) {
        return t.isFloatingPoint() && t != DType.FLOAT64;
    }

    private static void convert(DType s, MemorySegment src, long from, DType d, MemorySegment dst, long to) {
        if (s.isFloatingPoint()) {
            Elements.putDouble(dst, to, d, Elements.getDouble(src, from, s));
            return;
        }
        long v = Elements.getLong(src, from, s);
        if (d == DType.FLOAT64) Elements.putDouble(dst, to, d, v);
        else if (d.isFloatingPoint()) Floats.storeOne(d, dst, to, (float) v);   // one rounding, as C++'s int64 -> float
        else Elements.putLong(dst, to, d, v);
    }

    /** Moves n items of {@code item} bytes: one bulk copy for a contiguous run, else item by item. */
    private static void bytes(int item, MemorySegment[] data, long[] off, long[] st, long n) {
        MemorySegment dst = data[0], src = data[1];
        long to = off[0], from = off[1], ds = st[0], ss = st[1];
        if (ds == item && ss == item) {
            MemorySegment.copy(src, from, dst, to, n * item);
            return;
        }
        switch (item) {
            case 1 -> { for (long i = 0; i < n; i++) dst.set(ValueLayout.JAVA_BYTE, to + i * ds, src.get(ValueLayout.JAVA_BYTE, from + i * ss)); }
            case 2 -> { for (long i = 0; i < n; i++) dst.set(I16, to + i * ds, src.get(I16, from + i * ss)); }
            case 4 -> { for (long i = 0; i < n; i++) dst.set(I32, to + i * ds, src.get(I32, from + i * ss)); }
            default -> { for (long i = 0; i < n; i++) dst.set(I64, to + i * ds, src.get(I64, from + i * ss)); }
        }
    }
}
