package dev.sipu.cpu.simd;

import dev.sipu.api.Conversions;
import dev.sipu.api.DType;
import dev.sipu.api.Elements;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.ShortVector;
import jdk.incubator.vector.VectorMask;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorShape;
import jdk.incubator.vector.VectorSpecies;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;

/**
 * Runs of elements of any dtype to fp32 values in a float array and back: the one place where
 * dtypes meet the vector code. Every fp32 kernel loads its operands here, computes on float arrays
 * with {@link Vec}, and stores here, so narrow floats round exactly once, on the way out.
 *
 * <p>Contiguous fp32 runs are bulk copies; contiguous bf16 and fp16 runs convert in vector lanes
 * (bf16 is the top half of an fp32: widen the shorts to ints and shift left 16; fp16 and the
 * stores use integer tricks that round to nearest even, bit-exact with {@link Conversions}).
 * Strided runs and other dtypes take the scalar path. Offsets and strides are in bytes.
 */
public final class Floats {
    private Floats() {}

    private static final VectorSpecies<Float> F = Vec.S;
    private static final VectorSpecies<Integer> I = F.withLanes(int.class);
    /** Shorts with as many lanes as F: half its width. */
    private static final VectorSpecies<Short> H =
            VectorSpecies.of(short.class, VectorShape.forBitSize(F.vectorBitSize() / 2));
    private static final int L = F.length();
    private static final ByteOrder LE = ByteOrder.LITTLE_ENDIAN;

    private static final ValueLayout.OfFloat F32 = ValueLayout.JAVA_FLOAT_UNALIGNED;
    private static final ValueLayout.OfShort I16 = ValueLayout.JAVA_SHORT_UNALIGNED;
    private static final ValueLayout.OfLong I64 = ValueLayout.JAVA_LONG_UNALIGNED;

    // ---- load -------------------------------------------------------------------------------

    /** {@code dst[dstOff + i] = (float) element i}, elements {@code stride} bytes apart from {@code off}. */
    public static void load(DType t, MemorySegment m, long off, long stride, float[] dst, int dstOff, int n) {
        // An empty row may start past the end of its (empty) storage: touch nothing.
        if (n <= 0) return;
        if (stride == 0) {
            java.util.Arrays.fill(dst, dstOff, dstOff + n, loadOne(t, m, off));
        } else if (stride == t.itemSize() && t == DType.FLOAT32) {
            MemorySegment.copy(m, F32, off, dst, dstOff, n);
        } else if (stride == t.itemSize() && t == DType.BFLOAT16) {
            loadBf16(m, off, dst, dstOff, n);
        } else if (stride == t.itemSize() && t == DType.FLOAT16) {
            loadF16(m, off, dst, dstOff, n);
        } else {
            // Strided: one loop per common dtype, so the per-element work is a plain load.
            switch (t) {
                case FLOAT32 -> { for (int i = 0; i < n; i++) dst[dstOff + i] = m.get(F32, off + i * stride); }
                case BFLOAT16 -> { for (int i = 0; i < n; i++) dst[dstOff + i] = Conversions.bf16ToFloat(m.get(I16, off + i * stride)); }
                case FLOAT16 -> { for (int i = 0; i < n; i++) dst[dstOff + i] = Conversions.f16ToFloat(m.get(I16, off + i * stride)); }
                default -> { for (int i = 0; i < n; i++) dst[dstOff + i] = loadOne(t, m, off + i * stride); }
            }
        }
    }

    /** One element as fp32: exact for every float dtype but fp64; int64 rounds once, as C++'s cast does. */
    public static float loadOne(DType t, MemorySegment m, long at) {
        return switch (t) {
            case FLOAT32 -> m.get(F32, at);
            case BFLOAT16 -> Conversions.bf16ToFloat(m.get(I16, at));
            case FLOAT16 -> Conversions.f16ToFloat(m.get(I16, at));
            case INT64 -> (float) m.get(I64, at);
            default -> (float) Elements.getDouble(m, at, t);
        };
    }

    private static void loadBf16(MemorySegment m, long off, float[] dst, int dstOff, int n) {
        int i = 0;
        for (int bound = F.loopBound(n); i < bound; i += L) {
            IntVector w = (IntVector) ShortVector.fromMemorySegment(H, m, off + 2L * i, LE).convertShape(VectorOperators.S2I, I, 0);
            w.lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats().intoArray(dst, dstOff + i);
        }
        for (; i < n; i++) dst[dstOff + i] = Conversions.bf16ToFloat(m.get(I16, off + 2L * i));
    }

    private static void loadF16(MemorySegment m, long off, float[] dst, int dstOff, int n) {
        int i = 0;
        for (int bound = F.loopBound(n); i < bound; i += L) {
            IntVector h = (IntVector) ShortVector.fromMemorySegment(H, m, off + 2L * i, LE).convertShape(VectorOperators.S2I, I, 0);
            f16ToF32(h).intoArray(dst, dstOff + i);
        }
        for (; i < n; i++) dst[dstOff + i] = Conversions.f16ToFloat(m.get(I16, off + 2L * i));
    }

    /**
     * fp16 bits (low 16 bits of each lane) to fp32: move exponent and mantissa into place and scale
     * by 2^112 with an fp32 multiply, which also normalizes subnormals exactly; infinities and NaNs
     * get an all-ones exponent back, NaNs their quiet bit (as the multiply in c10's conversion sets it).
     */
    private static FloatVector f16ToF32(IntVector h) {
        IntVector em = h.and(0x7FFF);
        IntVector bits = em.lanewise(VectorOperators.LSHL, 13).reinterpretAsFloats().mul(0x1p112f).reinterpretAsInts();
        bits = bits.blend(bits.or(0x7F800000), em.compare(VectorOperators.GE, 0x7C00));
        bits = bits.blend(bits.or(0x7FC00000), em.compare(VectorOperators.GT, 0x7C00));
        return bits.or(h.and(0x8000).lanewise(VectorOperators.LSHL, 16)).reinterpretAsFloats();
    }

    // ---- store ------------------------------------------------------------------------------

    /** Element i = {@code src[srcOff + i]} converted to {@code t} (round to nearest even; integers truncate, as C++ casts). */
    public static void store(float[] src, int srcOff, int n, DType t, MemorySegment m, long off, long stride) {
        if (n <= 0) return;
        if (stride == t.itemSize() && t == DType.FLOAT32) {
            MemorySegment.copy(src, srcOff, m, F32, off, n);
        } else if (stride == t.itemSize() && t == DType.BFLOAT16) {
            storeBf16(src, srcOff, n, m, off);
        } else if (stride == t.itemSize() && t == DType.FLOAT16) {
            storeF16(src, srcOff, n, m, off);
        } else {
            switch (t) {
                case FLOAT32 -> { for (int i = 0; i < n; i++) m.set(F32, off + i * stride, src[srcOff + i]); }
                case BFLOAT16 -> { for (int i = 0; i < n; i++) m.set(I16, off + i * stride, Conversions.floatToBf16(src[srcOff + i])); }
                default -> { for (int i = 0; i < n; i++) storeOne(t, m, off + i * stride, src[srcOff + i]); }
            }
        }
    }

    public static void storeOne(DType t, MemorySegment m, long at, float v) {
        switch (t) {
            case FLOAT32 -> m.set(F32, at, v);
            case BFLOAT16 -> m.set(I16, at, Conversions.floatToBf16(v));
            case FLOAT16 -> m.set(I16, at, Conversions.floatToF16(v));
            default -> Elements.putDouble(m, at, t, v);
        }
    }

    private static void storeBf16(float[] src, int srcOff, int n, MemorySegment m, long off) {
        int i = 0;
        for (int bound = F.loopBound(n); i < bound; i += L) {
            IntVector b = f32ToBf16(FloatVector.fromArray(F, src, srcOff + i));
            b.convertShape(VectorOperators.I2S, H, 0).intoMemorySegment(m, off + 2L * i, LE);
        }
        for (; i < n; i++) m.set(I16, off + 2L * i, Conversions.floatToBf16(src[srcOff + i]));
    }

    private static void storeF16(float[] src, int srcOff, int n, MemorySegment m, long off) {
        int i = 0;
        for (int bound = F.loopBound(n); i < bound; i += L) {
            IntVector b = f32ToF16(FloatVector.fromArray(F, src, srcOff + i));
            b.convertShape(VectorOperators.I2S, H, 0).intoMemorySegment(m, off + 2L * i, LE);
        }
        for (; i < n; i++) m.set(I16, off + 2L * i, Conversions.floatToF16(src[srcOff + i]));
    }

    /** bf16 bits in the low half of each lane: round to nearest even by adding 0x7FFF plus the kept lsb; NaN -> 0x7FC0. */
    private static IntVector f32ToBf16(FloatVector v) {
        IntVector u = v.reinterpretAsInts();
        IntVector r = u.add(u.lanewise(VectorOperators.LSHR, 16).and(1).add(0x7FFF)).lanewise(VectorOperators.LSHR, 16);
        return r.blend(0x7FC0, v.test(VectorOperators.IS_NAN).cast(I));
    }

    /**
     * fp16 bits in the low half of each lane, round to nearest even. Normal results: rebias the
     * exponent and round at mantissa bit 13 with integer adds; subnormal results: an fp32 add of 0.5
     * lines the mantissa up and rounds it; overflow gives infinity, NaN the quiet 0x7E00.
     */
    private static IntVector f32ToF16(FloatVector v) {
        IntVector u = v.reinterpretAsInts();
        IntVector sign = u.and(0x80000000);
        IntVector a = u.lanewise(VectorOperators.XOR, sign);
        IntVector normal = a.add(((15 - 127) << 23) + 0xFFF).add(a.lanewise(VectorOperators.LSHR, 13).and(1))
                .lanewise(VectorOperators.LSHR, 13);
        IntVector subnormal = a.reinterpretAsFloats().add(0.5f).reinterpretAsInts().sub(126 << 23);
        IntVector r = normal.blend(subnormal, a.compare(VectorOperators.LT, 113 << 23));
        VectorMask<Integer> big = a.compare(VectorOperators.GE, (127 + 16) << 23);
        IntVector special = IntVector.broadcast(I, 0x7C00).blend(0x7E00, a.compare(VectorOperators.GT, 0x7F800000));
        r = r.blend(special, big);
        return r.or(sign.lanewise(VectorOperators.LSHR, 16));
    }

    // ---- rounding in place ------------------------------------------------------------------

    /** Rounds {@code x[off .. off+n)} to {@code t} and back: what storing and reloading would give. */
    public static void round(float[] x, int off, int n, DType t) {
        switch (t) {
            case FLOAT32, FLOAT64 -> { }
            case BFLOAT16 -> {
                int i = 0;
                for (int bound = F.loopBound(n); i < bound; i += L) {
                    f32ToBf16(FloatVector.fromArray(F, x, off + i)).lanewise(VectorOperators.LSHL, 16)
                            .reinterpretAsFloats().intoArray(x, off + i);
                }
                for (; i < n; i++) x[off + i] = Conversions.bf16ToFloat(Conversions.floatToBf16(x[off + i]));
            }
            case FLOAT16 -> {
                int i = 0;
                for (int bound = F.loopBound(n); i < bound; i += L) {
                    f16ToF32(f32ToF16(FloatVector.fromArray(F, x, off + i))).intoArray(x, off + i);
                }
                for (; i < n; i++) x[off + i] = Conversions.f16ToFloat(Conversions.floatToF16(x[off + i]));
            }
            default -> {
                for (int i = 0; i < n; i++) x[off + i] = roundOne(t, x[off + i]);
            }
        }
    }

    private static float roundOne(DType t, float v) {
        return switch (t) {
            case FLOAT8_E4M3FN -> Conversions.e4m3ToFloat(Conversions.floatToE4m3(v));
            case FLOAT8_E5M2 -> Conversions.e5m2ToFloat(Conversions.floatToE5m2(v));
            default -> throw new IllegalArgumentException("cannot round fp32 values to " + t);
        };
    }
}
