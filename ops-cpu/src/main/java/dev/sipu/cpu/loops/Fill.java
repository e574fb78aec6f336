package dev.sipu.cpu.loops;

import dev.sipu.api.DType;
import dev.sipu.api.Elements;
import dev.sipu.api.Scalar;
import dev.sipu.api.Tensor;
import dev.sipu.cpu.iter.TensorIter;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/** Writes one value into every element of a CPU tensor (broadcast views included: fill is idempotent). */
public final class Fill {
    private Fill() {}

    /** Every element of {@code t} = {@code value}, which is already a value of t's dtype (see ScalarCast). */
    public static void fill(Tensor t, Scalar value) {
        DType dtype = t.dtype();
        int item = dtype.itemSize();
        long bits = encode(dtype, value);
        TensorIter.of(t).forEach(() -> (data, off, st, n) -> {
            MemorySegment m = data[0];
            long at = off[0], step = st[0];
            if (bits == 0 && step == item) {
                m.asSlice(at, n * item).fill((byte) 0);
                return;
            }
            switch (item) {
                case 1 -> { for (long i = 0; i < n; i++) m.set(ValueLayout.JAVA_BYTE, at + i * step, (byte) bits); }
                case 2 -> { for (long i = 0; i < n; i++) m.set(ValueLayout.JAVA_SHORT_UNALIGNED, at + i * step, (short) bits); }
                case 4 -> { for (long i = 0; i < n; i++) m.set(ValueLayout.JAVA_INT_UNALIGNED, at + i * step, (int) bits); }
                default -> { for (long i = 0; i < n; i++) m.set(ValueLayout.JAVA_LONG_UNALIGNED, at + i * step, bits); }
            }
        });
    }

    /** The element's bit pattern, in the low {@code itemSize} bytes. */
    private static long encode(DType dtype, Scalar value) {
        MemorySegment one = MemorySegment.ofArray(new long[1]);
        if (dtype.isFloatingPoint()) Elements.putDouble(one, 0, dtype, value.toDouble());
        else Elements.putLong(one, 0, dtype, value.toLong());
        return one.get(ValueLayout.JAVA_LONG_UNALIGNED, 0);
    }
}
