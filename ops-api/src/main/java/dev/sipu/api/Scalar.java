package dev.sipu.api;

/**
 * A PyTorch Scalar: an int, a float or a bool. Which one matters for type promotion
 * ({@code int_tensor + 2.5} is float32, {@code int_tensor + 2} stays integral).
 */
public sealed interface Scalar {

    record Int(long value) implements Scalar {
        public double toDouble() { return value; }
        public long toLong() { return value; }
        public DType dtype() { return DType.INT64; }
        @Override public String toString() { return Long.toString(value); }
    }

    record Float(double value) implements Scalar {
        public double toDouble() { return value; }
        /** C++'s static_cast from double, truncating toward zero. */
        public long toLong() { return (long) value; }
        public DType dtype() { return DType.FLOAT64; }
        @Override public String toString() { return Double.toString(value); }
    }

    record Bool(boolean value) implements Scalar {
        public double toDouble() { return value ? 1 : 0; }
        public long toLong() { return value ? 1 : 0; }
        public DType dtype() { return DType.BOOL; }
        @Override public String toString() { return value ? "True" : "False"; }
    }

    double toDouble();

    long toLong();

    /** The dtype PyTorch gives this scalar when it wraps it in a tensor (int64, float64 or bool). */
    DType dtype();

    default boolean isFloatingPoint() { return this instanceof Float; }

    default boolean isIntegral() { return this instanceof Int; }

    default boolean isBool() { return this instanceof Bool; }

    static Scalar of(long v) { return new Int(v); }

    static Scalar of(double v) { return new Float(v); }

    static Scalar of(boolean v) { return new Bool(v); }
}
