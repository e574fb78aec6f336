package dev.sipu.dispatch.meta;

import dev.sipu.api.Conversions;
import dev.sipu.api.DType;
import dev.sipu.api.Scalar;
import dev.sipu.dispatch.Call;

/**
 * A Scalar argument converted to a tensor dtype as PyTorch's {@code Scalar::to<T>()} does it
 * ({@code checked_convert}): values outside the dtype's range are an error, except infinities for
 * floats that have them and negative integers for uint8 (which wrap); doubles reach the narrow
 * floats through fp32; floats reach integers by truncation.
 */
public final class ScalarCast {
    private ScalarCast() {}

    /** Argument {@code arg} (a Scalar) as a value of {@code dtype}. */
    public static Scalar to(Call c, int arg, DType dtype) {
        return to(c, arg, c.scalar(arg), dtype);
    }

    /**
     * {@code value} (derived from argument {@code arg}, e.g. a negated alpha) as a value of
     * {@code dtype}: a {@link Scalar.Float} holding the rounded value for float dtypes, a
     * {@link Scalar.Int} holding the wrapped value for integral ones, a {@link Scalar.Bool} for bool.
     */
    public static Scalar to(Call c, int arg, Scalar value, DType dtype) {
        if (dtype.isBool()) return Scalar.of(value.isFloatingPoint() ? value.toDouble() != 0 : value.toLong() != 0);
        if (!value.isBool() && overflows(value, dtype)) {
            throw c.error(arg, "value cannot be converted to type " + dtype + " without overflow");
        }
        if (dtype.isFloatingPoint()) {
            if (dtype == DType.FLOAT64) return Scalar.of(value.toDouble());
            // int64 -> float is one rounding in C++; a double reaches the narrow floats through fp32.
            float f = value.isFloatingPoint() ? (float) value.toDouble() : (float) value.toLong();
            return Scalar.of((double) roundTo(f, dtype));
        }
        return Scalar.of(narrow(value.toLong(), dtype));
    }

    /** fp32 value rounded to a float dtype and read back (identity for fp32). */
    public static float roundTo(float f, DType dtype) {
        return switch (dtype) {
            case FLOAT64, FLOAT32 -> f;
            case BFLOAT16 -> Conversions.bf16ToFloat(Conversions.floatToBf16(f));
            case FLOAT16 -> Conversions.f16ToFloat(Conversions.floatToF16(f));
            case FLOAT8_E4M3FN -> Conversions.e4m3ToFloat(Conversions.floatToE4m3(f));
            case FLOAT8_E5M2 -> Conversions.e5m2ToFloat(Conversions.floatToE5m2(f));
            default -> throw new IllegalArgumentException(dtype + " is not a float dtype");
        };
    }

    /** Two's complement wrap of an int64 to an integral dtype. */
    public static long narrow(long v, DType dtype) {
        return switch (dtype) {
            case INT64 -> v;
            case INT32 -> (int) v;
            case INT16 -> (short) v;
            case INT8 -> (byte) v;
            case UINT8 -> v & 0xFF;
            case BOOL -> v != 0 ? 1 : 0;
            default -> throw new IllegalArgumentException(dtype + " is not integral");
        };
    }

    private static boolean overflows(Scalar value, DType dtype) {
        double lowest = lowest(dtype), max = max(dtype);
        if (value.isFloatingPoint()) {
            double d = value.toDouble();
            if (Double.isInfinite(d)) return !hasInfinity(dtype);
            if (Double.isNaN(d)) return !dtype.isFloatingPoint();
            return d < lowest || d > max;
        }
        long v = value.toLong();
        // c10's overflows(): a negative integer may wrap into an unsigned type if its magnitude fits.
        if (dtype == DType.UINT8 && v < 0) return v < -255;
        return v < lowest || v > max;
    }

    private static boolean hasInfinity(DType dtype) {
        return dtype.isFloatingPoint() && dtype != DType.FLOAT8_E4M3FN;
    }

    private static double lowest(DType dtype) { return dtype == DType.UINT8 ? 0 : -max(dtype) - (dtype.isIntegral() ? 1 : 0); }

    private static double max(DType dtype) {
        return switch (dtype) {
            case FLOAT64 -> Double.MAX_VALUE;
            case FLOAT32 -> Float.MAX_VALUE;
            case FLOAT16 -> 65504;
            case BFLOAT16 -> 0x1.FEp127;
            case FLOAT8_E4M3FN -> 448;
            case FLOAT8_E5M2 -> 57344;
            case INT64 -> 0x1p63 - 1;   // compared with longs below; as a double it rounds to 2^63
            case INT32 -> Integer.MAX_VALUE;
            case INT16 -> Short.MAX_VALUE;
            case INT8 -> Byte.MAX_VALUE;
            case UINT8 -> 255;
            case BOOL -> 1;
        };
    }
}
