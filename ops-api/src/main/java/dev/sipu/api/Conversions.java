package dev.sipu.api;

/**
 * Bit-exact conversions between fp32 and the narrow float formats, ported from PyTorch's c10
 * ({@code BFloat16.h}, {@code Half.h}, {@code Float8_e4m3fn.h}, {@code Float8_e5m2.h}), and the
 * float-to-integer casts as x86 performs C++'s {@code static_cast} (the C kernels give the same).
 */
public final class Conversions {
    private Conversions() {}

    // ---- bfloat16 -----------------------------------------------------------------------------

    public static float bf16ToFloat(short bits) {
        return Float.intBitsToFloat((bits & 0xFFFF) << 16);
    }

    /** Round to nearest even; every NaN becomes the canonical quiet NaN 0x7FC0. */
    public static short floatToBf16(float f) {
        if (Float.isNaN(f)) return 0x7FC0;
        int u = Float.floatToRawIntBits(f);
        int bias = ((u >>> 16) & 1) + 0x7FFF;
        return (short) ((u + bias) >>> 16);
    }

    // ---- float16 ------------------------------------------------------------------------------

    public static float f16ToFloat(short bits) { return Float.float16ToFloat(bits); }

    public static short floatToF16(float f) {
        if (Float.isNaN(f)) return (short) ((Float.floatToRawIntBits(f) >>> 16 & 0x8000) | 0x7E00);
        return Float.floatToFloat16(f);
    }

    // ---- float8_e4m3fn ------------------------------------------------------------------------

    public static float e4m3ToFloat(byte b) {
        int v = b & 0xFF;
        int exp = (v >>> 3) & 0xF, man = v & 7;
        float mag;
        if (exp == 15 && man == 7) mag = Float.NaN;
        else if (exp == 0) mag = man * 0x1p-9f;
        else mag = Math.scalb(1f + man / 8f, exp - 7);
        return (v & 0x80) != 0 ? -mag : mag;
    }

    /**
     * PyTorch's {@code .to(torch.float8_e4m3fn)}: round to nearest even, not saturating. Magnitudes
     * above 464 (the tie between 448 and the missing 480) and infinities become NaN.
     */
    public static byte floatToE4m3(float f) {
        final int fp8Max = 1087 << 20;          // 480.0f
        final int denormMask = 141 << 23;
        int bits = Float.floatToRawIntBits(f);
        int sign = bits & 0x80000000;
        bits ^= sign;
        int result;
        if (Integer.compareUnsigned(bits, fp8Max) >= 0) {
            result = 0x7F;
        } else if (Integer.compareUnsigned(bits, 121 << 23) < 0) {
            // below 2^-6: let fp32 addition do the subnormal rounding
            bits = Float.floatToRawIntBits(Float.intBitsToFloat(bits) + Float.intBitsToFloat(denormMask));
            result = (bits - denormMask) & 0xFF;
        } else {
            int mantOdd = (bits >>> 20) & 1;
            bits += ((7 - 127) << 23) + 0x7FFFF;
            bits += mantOdd;
            result = (bits >>> 20) & 0xFF;
        }
        return (byte) (result | (sign >>> 24));
    }

    // ---- float8_e5m2 --------------------------------------------------------------------------

    public static float e5m2ToFloat(byte b) { return Float.float16ToFloat((short) ((b & 0xFF) << 8)); }

    /** Round to nearest even; overflow gives infinity, NaN stays NaN. */
    public static byte floatToE5m2(float f) {
        final int fp32Inf = 255 << 23;
        final int fp8Max = 143 << 23;           // 65536.0f
        final int denormMask = 134 << 23;
        int bits = Float.floatToRawIntBits(f);
        int sign = bits & 0x80000000;
        bits ^= sign;
        int result;
        if (Integer.compareUnsigned(bits, fp8Max) >= 0) {
            result = Integer.compareUnsigned(bits, fp32Inf) > 0 ? 0x7F : 0x7C;
        } else if (Integer.compareUnsigned(bits, 113 << 23) < 0) {
            bits = Float.floatToRawIntBits(Float.intBitsToFloat(bits) + Float.intBitsToFloat(denormMask));
            result = (bits - denormMask) & 0xFF;
        } else {
            int mantOdd = (bits >>> 21) & 1;
            bits += ((15 - 127) << 23) + 0xFFFFF;
            bits += mantOdd;
            result = (bits >>> 21) & 0xFF;
        }
        return (byte) (result | (sign >>> 24));
    }

    // ---- float -> integer, as x86's cvtt* does it ---------------------------------------------

    /** NaN and out-of-range values give Long.MIN_VALUE (x86's "integer indefinite"). */
    public static long doubleToInt64(double d) {
        if (!(d > -0x1p63 - 1 && d < 0x1p63)) return Long.MIN_VALUE;
        return (long) d;
    }

    /** NaN and out-of-range values give Integer.MIN_VALUE. */
    public static int doubleToInt32(double d) {
        if (!(d > -0x1p31 - 1 && d < 0x1p31)) return Integer.MIN_VALUE;
        return (int) d;
    }
}
