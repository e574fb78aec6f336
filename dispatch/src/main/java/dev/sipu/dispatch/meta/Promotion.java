package dev.sipu.dispatch.meta;

import dev.sipu.api.DType;
import dev.sipu.api.TypePromotion;

/**
 * How an elementwise op turns the promoted dtype of its operands ({@code result_type}) into the
 * dtype it computes in and the dtype of its result: PyTorch's {@code ELEMENTWISE_TYPE_PROMOTION_KIND}.
 */
public enum Promotion {
    /** Computed in and returned as the promoted dtype ({@code add}, {@code mul}, {@code neg}). */
    DEFAULT,
    /** Integral and bool operands become the default float ({@code div}, {@code sigmoid}). */
    INT_TO_FLOAT,
    /** Compared in the promoted dtype, returned as bool ({@code eq}, {@code lt}). */
    ALWAYS_BOOL;

    /** The dtype operands are converted to before the op (PyTorch's {@code common_dtype}). */
    public DType common(DType promoted) {
        if (this == INT_TO_FLOAT && !promoted.isFloatingPoint()) return TypePromotion.DEFAULT_FLOAT;
        return promoted;
    }

    /** The dtype of a new output. */
    public DType result(DType common) {
        return this == ALWAYS_BOOL ? DType.BOOL : common;
    }
}
