package dev.sipu.dispatch.meta;

import dev.sipu.api.DType;
import dev.sipu.api.Scalar;
import dev.sipu.dispatch.Call;

/**
 * The meta functions of the arithmetic ops (PyTorch's {@code TORCH_META_FUNC}s): each checks the
 * call, promotes, and returns an {@link ElementwiseMeta} with a new output; a device kernel then
 * only computes. Schemas: {@code add/sub.Tensor(self, other, *, alpha)}, {@code mul/div.Tensor(self, other)},
 * {@code neg/sigmoid/silu(self)}.
 */
public final class ArithmeticMeta {
    private ArithmeticMeta() {}

    /** {@code add.Tensor} and {@code sub.Tensor}: {@code self + alpha * other} (alpha negated for sub, see {@link #alpha}). */
    public static ElementwiseMeta addSub(Call c) {
        ElementwiseMeta.addSub(c, c.tensor(0), c.tensor(1), c.scalar(2));
        return arithmetic(c, Promotion.DEFAULT, 0, 1);
    }

    /**
     * The alpha of an add/sub call as a value of the common dtype (PyTorch's {@code alpha.to<scalar_t>()}):
     * rounded to bf16 for a bf16 add, negated for sub (which PyTorch runs as add with -alpha).
     */
    public static Scalar alpha(Call c, ElementwiseMeta m) {
        Scalar alpha = c.scalar(2);
        if (c.op().startsWith("aten::sub")) {
            alpha = alpha.isFloatingPoint() ? Scalar.of(-alpha.toDouble()) : Scalar.of(-alpha.toLong());
        }
        return ScalarCast.to(c, 2, alpha, m.commonDtype());
    }

    public static ElementwiseMeta mul(Call c) {
        return arithmetic(c, Promotion.DEFAULT, 0, 1);
    }

    /** True division: integral and bool operands divide as the default float. */
    public static ElementwiseMeta div(Call c) {
        return arithmetic(c, Promotion.INT_TO_FLOAT, 0, 1);
    }

    public static ElementwiseMeta neg(Call c) {
        if (c.tensor(0).dtype().isBool()) {
            throw c.error(0, "Negation, the `-` operator, on a bool tensor is not supported. "
                    + "If you are trying to invert a mask, use the `~` or `logical_not()` operator instead.");
        }
        return arithmetic(c, Promotion.DEFAULT, 0);
    }

    /** Integral and bool inputs give the default float. */
    public static ElementwiseMeta sigmoid(Call c) {
        return arithmetic(c, Promotion.INT_TO_FLOAT, 0);
    }

    /** Floating-point inputs only (PyTorch has no integer silu). */
    public static ElementwiseMeta silu(Call c) {
        DType t = c.tensor(0).dtype();
        if (!t.isFloatingPoint()) throw c.error(0, "\"silu\" not implemented for '" + t + "'");
        return arithmetic(c, Promotion.DEFAULT, 0);
    }

    /** PyTorch has no arithmetic kernels for float8 (it is a storage format): refused before allocating. */
    private static ElementwiseMeta arithmetic(Call c, Promotion p, int... operands) {
        for (int i : operands) {
            DType t = c.tensor(i).dtype();
            if (t.isFloat8()) throw c.error(i, "\"" + c.op() + "\" not implemented for '" + t + "'");
        }
        return ElementwiseMeta.compute(c, p, operands);
    }
}
