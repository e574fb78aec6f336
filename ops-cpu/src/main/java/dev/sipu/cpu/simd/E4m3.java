package dev.sipu.cpu.simd;

import dev.sipu.api.Conversions;
import jdk.incubator.vector.ByteVector;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorShape;
import jdk.incubator.vector.VectorSpecies;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;

/**
 * float8 e4m3fn codes to fp32 and back, bit-exact with {@link Conversions} (c10). Decoding is a
 * 256-entry table (every code is exact in fp32). Encoding here is the saturating conversion of
 * every vLLM and DeepSeek quantization kernel (SEMANTICS.md §0.2, the C kernels' {@code f32_to_e4m3_sat}):
 * clamp to ±448, then round to nearest even; every NaN gives the code 0x7F.
 */
public final class E4m3 {
    private E4m3() {}

    private static final VectorSpecies<Float> F = Vec.S;
    private static final VectorSpecies<Integer> I = F.withLanes(int.class);
    private static final int L = F.length();
    /** Bytes with as many lanes as F; none when F is too narrow for a byte vector shape. */
    private static final VectorSpecies<Byte> B = F.vectorBitSize() >= 256
            ? VectorSpecies.of(byte.class, VectorShape.forBitSize(F.vectorBitSize() / 4)) : null;
    private static final ValueLayout.OfByte U8 = ValueLayout.JAVA_BYTE;

    private static final float[] DECODE = new float[256];

    static {
        for (int i = 0; i < 256; i++) DECODE[i] = Conversions.e4m3ToFloat((byte) i);
    }

    /** The fp32 value of an e4m3 code. */
    public static float decode(byte code) {
        return DECODE[code & 0xFF];
    }

    /** {@code dst[dstOff + i] = decode(m[off + i])} for n contiguous codes. */
    public static void decode(MemorySegment m, long off, float[] dst, int dstOff, int n) {
        for (int i = 0; i < n; i++) dst[dstOff + i] = DECODE[m.get(U8, off + i) & 0xFF];
    }

    /** The saturating code of one value. */
    public static byte encodeSaturating(float f) {
        if (Float.isNaN(f)) return 0x7F;
        return Conversions.floatToE4m3(Math.max(-448f, Math.min(448f, f)));
    }

    /** Saturating codes of {@code src[srcOff .. srcOff+n)} into n contiguous bytes at {@code off}. */
    public static void storeSaturating(float[] src, int srcOff, int n, MemorySegment m, long off) {
        int i = 0;
        if (B != null) {
            for (int bound = F.loopBound(n); i < bound; i += L) {
                IntVector codes = encode(FloatVector.fromArray(F, src, srcOff + i));
                ((ByteVector) codes.convertShape(VectorOperators.I2B, B, 0)).intoMemorySegment(m, off + i, ByteOrder.LITTLE_ENDIAN);
            }
        }
        for (; i < n; i++) m.set(U8, off + i, encodeSaturating(src[srcOff + i]));
    }

    /**
     * Lane-wise {@link #encodeSaturating}: after the clamp every magnitude is at most 448, so only
     * c10's two finite branches remain. Below 2^-6 an fp32 add of 2^14 lines the mantissa up at the
     * subnormal quantum 2^-9 and rounds it; above, the exponent is rebiased and the mantissa rounded
     * at bit 20 with integer adds.
     */
    private static IntVector encode(FloatVector v) {
        IntVector u = v.max(-448f).min(448f).reinterpretAsInts();
        IntVector sign = u.and(0x80000000);
        IntVector a = u.lanewise(VectorOperators.XOR, sign);
        IntVector normal = a.add(((7 - 127) << 23) + 0x7FFFF).add(a.lanewise(VectorOperators.LSHR, 20).and(1))
                .lanewise(VectorOperators.LSHR, 20);
        IntVector subnormal = a.reinterpretAsFloats().add(Float.intBitsToFloat(141 << 23)).reinterpretAsInts().sub(141 << 23);
        IntVector r = normal.blend(subnormal, a.compare(VectorOperators.LT, 121 << 23));
        r = r.or(sign.lanewise(VectorOperators.LSHR, 24));
        return r.blend(0x7F, v.test(VectorOperators.IS_NAN).cast(I));
    }
}
