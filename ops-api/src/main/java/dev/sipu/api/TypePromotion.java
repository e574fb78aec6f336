package dev.sipu.api;

/**
 * PyTorch's type promotion: {@code promoteTypes} for two dtypes and {@code result_type} over
 * operands of three priorities (tensors with dimensions, 0-dim tensors, Python scalars).
 */
public final class TypePromotion {
    private TypePromotion() {}

    public static final DType DEFAULT_FLOAT = DType.FLOAT32;

    /** c10::promoteTypes. Float8 types only promote with themselves. */
    public static DType promote(DType a, DType b) {
        if (a == b) return a;
        if (a.isFloat8() || b.isFloat8()) {
            throw new IllegalArgumentException("promotion between " + a + " and " + b + " is not supported (float8)");
        }
        if (a.isBool()) return b;
        if (b.isBool()) return a;
        if (a.isFloatingPoint() || b.isFloatingPoint()) {
            if (!a.isFloatingPoint()) return b;
            if (!b.isFloatingPoint()) return a;
            if (a == DType.FLOAT64 || b == DType.FLOAT64) return DType.FLOAT64;
            if (a == DType.FLOAT32 || b == DType.FLOAT32) return DType.FLOAT32;
            return DType.FLOAT32; // float16 with bfloat16
        }
        // both integral
        if (a == DType.UINT8 || b == DType.UINT8) {
            DType other = a == DType.UINT8 ? b : a;
            return other == DType.INT8 ? DType.INT16 : other;
        }
        return a.itemSize() >= b.itemSize() ? a : b;
    }

    /** Accumulates operands and answers {@code result_type} as PyTorch computes it. */
    public static final class State {
        private DType dimResult;
        private DType zeroResult;
        private DType wrappedResult;

        public State tensor(Tensor t) { return tensor(t.dtype(), t.dim()); }

        public State tensor(DType dtype, int rank) {
            if (rank > 0) dimResult = promoteSkip(dimResult, dtype);
            else zeroResult = promoteSkip(zeroResult, dtype);
            return this;
        }

        public State scalar(Scalar s) {
            // A Python float enters as the default dtype, an int as int64, a bool as bool.
            DType d = s.isFloatingPoint() ? DEFAULT_FLOAT : s.dtype();
            wrappedResult = promoteSkip(wrappedResult, d);
            return this;
        }

        public DType result() {
            DType r = combine(dimResult, combine(zeroResult, wrappedResult));
            return r == null ? DEFAULT_FLOAT : r;
        }

        private static DType promoteSkip(DType a, DType b) {
            if (a == null) return b;
            if (b == null) return a;
            return promote(a, b);
        }

        private static DType combine(DType higher, DType lower) {
            if (higher == null) return lower;
            if (higher.isFloatingPoint()) return higher;
            if (lower != null && (higher.isBool() || lower.isFloatingPoint())) return promoteSkip(higher, lower);
            return higher;
        }
    }

    public static State state() { return new State(); }

    public static DType resultType(Tensor a, Tensor b) { return state().tensor(a).tensor(b).result(); }

    public static DType resultType(Tensor a, Scalar b) { return state().tensor(a).scalar(b).result(); }
}
