package dev.sipu.api;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/**
 * Reading and writing single elements of host memory by dtype, with PyTorch's conversion rules.
 * This is the slow, general path (tests, scalars, generic kernels); hot loops use typed code.
 */
public final class Elements {
    private Elements() {}

    static final ValueLayout.OfShort I16 = ValueLayout.JAVA_SHORT_UNALIGNED;
    static final ValueLayout.OfInt I32 = ValueLayout.JAVA_INT_UNALIGNED;
    static final ValueLayout.OfLong I64 = ValueLayout.JAVA_LONG_UNALIGNED;
    static final ValueLayout.OfFloat F32 = ValueLayout.JAVA_FLOAT_UNALIGNED;
    static final ValueLayout.OfDouble F64 = ValueLayout.JAVA_DOUBLE_UNALIGNED;

    public static double getDouble(MemorySegment m, long byteOffset, DType t) {
        return switch (t) {
            case FLOAT64 -> m.get(F64, byteOffset);
            case FLOAT32 -> m.get(F32, byteOffset);
            case FLOAT16 -> Conversions.f16ToFloat(m.get(I16, byteOffset));
            case BFLOAT16 -> Conversions.bf16ToFloat(m.get(I16, byteOffset));
            case FLOAT8_E4M3FN -> Conversions.e4m3ToFloat(m.get(ValueLayout.JAVA_BYTE, byteOffset));
            case FLOAT8_E5M2 -> Conversions.e5m2ToFloat(m.get(ValueLayout.JAVA_BYTE, byteOffset));
            case INT64 -> m.get(I64, byteOffset);
            case INT32 -> m.get(I32, byteOffset);
            case INT16 -> m.get(I16, byteOffset);
            case INT8 -> m.get(ValueLayout.JAVA_BYTE, byteOffset);
            case UINT8 -> m.get(ValueLayout.JAVA_BYTE, byteOffset) & 0xFF;
            case BOOL -> m.get(ValueLayout.JAVA_BYTE, byteOffset) != 0 ? 1 : 0;
        };
    }

    public static long getLong(MemorySegment m, long byteOffset, DType t) {
        return switch (t) {
            case INT64 -> m.get(I64, byteOffset);
            case INT32 -> m.get(I32, byteOffset);
            case INT16 -> m.get(I16, byteOffset);
            case INT8 -> m.get(ValueLayout.JAVA_BYTE, byteOffset);
            case UINT8 -> m.get(ValueLayout.JAVA_BYTE, byteOffset) & 0xFF;
            case BOOL -> m.get(ValueLayout.JAVA_BYTE, byteOffset) != 0 ? 1 : 0;
            default -> Conversions.doubleToInt64(getDouble(m, byteOffset, t));
        };
    }

    /** Stores a double, converting as PyTorch does (doubles narrow to fp32 before 16/8-bit floats). */
    public static void putDouble(MemorySegment m, long byteOffset, DType t, double v) {
        switch (t) {
            case FLOAT64 -> m.set(F64, byteOffset, v);
            case FLOAT32 -> m.set(F32, byteOffset, (float) v);
            case FLOAT16 -> m.set(I16, byteOffset, Conversions.floatToF16((float) v));
            case BFLOAT16 -> m.set(I16, byteOffset, Conversions.floatToBf16((float) v));
            case FLOAT8_E4M3FN -> m.set(ValueLayout.JAVA_BYTE, byteOffset, Conversions.floatToE4m3((float) v));
            case FLOAT8_E5M2 -> m.set(ValueLayout.JAVA_BYTE, byteOffset, Conversions.floatToE5m2((float) v));
            case INT64 -> m.set(I64, byteOffset, Conversions.doubleToInt64(v));
            case INT32 -> m.set(I32, byteOffset, Conversions.doubleToInt32(v));
            case INT16 -> m.set(I16, byteOffset, (short) Conversions.doubleToInt32(v));
            case INT8, UINT8 -> m.set(ValueLayout.JAVA_BYTE, byteOffset, (byte) Conversions.doubleToInt32(v));
            case BOOL -> m.set(ValueLayout.JAVA_BYTE, byteOffset, (byte) (v != 0 || Double.isNaN(v) ? 1 : 0));
        }
    }

    /** Stores an integer; integer targets wrap, float targets round. */
    public static void putLong(MemorySegment m, long byteOffset, DType t, long v) {
        switch (t) {
            case INT64 -> m.set(I64, byteOffset, v);
            case INT32 -> m.set(I32, byteOffset, (int) v);
            case INT16 -> m.set(I16, byteOffset, (short) v);
            case INT8, UINT8 -> m.set(ValueLayout.JAVA_BYTE, byteOffset, (byte) v);
            case BOOL -> m.set(ValueLayout.JAVA_BYTE, byteOffset, (byte) (v != 0 ? 1 : 0));
            default -> putDouble(m, byteOffset, t, (double) v);
        }
    }

    /** Reads element {@code index} (row-major over the tensor's sizes) of a CPU tensor as a double. */
    public static double getDouble(Tensor t, long index) {
        return getDouble(t.storage().memory(), byteOffsetOf(t, index), t.dtype());
    }

    public static long getLong(Tensor t, long index) {
        return getLong(t.storage().memory(), byteOffsetOf(t, index), t.dtype());
    }

    /** Byte offset in the storage of the element with row-major linear index {@code index}. */
    public static long byteOffsetOf(Tensor t, long index) {
        long[] sizes = t.sizes(), strides = t.strides();
        long off = t.offset();
        for (int d = sizes.length - 1; d >= 0; d--) {
            long s = sizes[d];
            off += (index % s) * strides[d];
            index /= s;
        }
        return off * t.dtype().itemSize();
    }
}
