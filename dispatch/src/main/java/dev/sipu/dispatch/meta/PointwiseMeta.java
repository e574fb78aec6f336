package dev.sipu.dispatch.meta;

import dev.sipu.api.DType;
import dev.sipu.api.Scalar;
import dev.sipu.api.Shapes;
import dev.sipu.api.Tensor;
import dev.sipu.dispatch.Call;

import java.util.Arrays;

/**
 * The meta functions of the elementwise ops beyond {@link ArithmeticMeta}: comparisons, bitwise
 * ops, floor division, powers, {@code rsub}, the float functions, {@code clamp}, {@code where},
 * {@code masked_fill_} and the in-place and {@code out=} forms. Each checks and promotes as
 * PyTorch does and returns an {@link ElementwiseMeta}; device kernels only compute.
 */
public final class PointwiseMeta {
    private PointwiseMeta() {}

    /** {@code eq/lt/le/gt/ge} (Tensor or Scalar other): compared in the promoted dtype, bool result. */
    public static ElementwiseMeta compare(Call c) {
        return ElementwiseMeta.compute(c, Promotion.ALWAYS_BOOL, noFloat8(c, 0, 1));
    }

    /** {@code bitwise_and/or.Tensor}: integral and bool only. */
    public static ElementwiseMeta bitwise(Call c) {
        integralOnly(c, ElementwiseMeta.promote(c, c.tensor(0), c.tensor(1)), 1);
        return ElementwiseMeta.compute(c, Promotion.DEFAULT, 0, 1);
    }

    /** {@code bitwise_not}: integral and bool only (bool negates, integers complement). */
    public static ElementwiseMeta bitwiseNot(Call c) {
        integralOnly(c, c.tensor(0).dtype(), 0);
        return ElementwiseMeta.compute(c, Promotion.DEFAULT, 0);
    }

    /** {@code floor_divide(self, other)}: Python's floor division; integer division by zero is found by the kernel. */
    public static ElementwiseMeta floorDivide(Call c) {
        DType t = ElementwiseMeta.promote(c, c.tensor(0), c.tensor(1));
        if (t.isBool()) throw notImplemented(c, "div_floor", t, 0);
        return ElementwiseMeta.compute(c, Promotion.DEFAULT, noFloat8(c, 0, 1));
    }

    /**
     * {@code pow.Tensor_Scalar}, {@code pow.Scalar} and {@code pow.Tensor_Tensor_out} (out = argument 2):
     * integral results refuse negative integer exponents (a Scalar one here, tensor ones in the kernel).
     */
    public static ElementwiseMeta pow(Call c) {
        if (c.arg(1) instanceof Scalar e && e.isIntegral() && e.toLong() < 0 && !c.tensor(0).dtype().isFloatingPoint()) {
            throw c.error(1, "Integers to negative integer powers are not allowed.");
        }
        int[] ops = noFloat8(c, 0, 1);
        return c.op().endsWith("_out") ? ElementwiseMeta.into(c, 2, Promotion.DEFAULT, ops)
                : ElementwiseMeta.compute(c, Promotion.DEFAULT, ops);
    }

    /** {@code rsub.Scalar(self, other, alpha)} = {@code other - alpha * self}; alpha then belongs to self. */
    public static ElementwiseMeta rsub(Call c) {
        DType self = c.tensor(0).dtype();
        if (self.isBool()) {
            throw c.error(0, "Subtraction, the `-` operator, with a bool tensor is not supported. "
                    + "If you are trying to invert a mask, use the `~` or `logical_not()` operator instead.");
        }
        ElementwiseMeta m = ElementwiseMeta.compute(c, Promotion.DEFAULT, noFloat8(c, 0, 1));
        try {
            ElementwiseMeta.checkAlpha(c, 2, c.scalar(2), m.commonDtype());
            return m;
        } catch (RuntimeException e) {
            m.close();
            throw e;
        }
    }

    /** {@code rsub}'s alpha as a value of the common dtype. */
    public static Scalar rsubAlpha(Call c, ElementwiseMeta m) {
        return ScalarCast.to(c, 2, m.commonDtype());
    }

    /** {@code cos}, {@code sin}, {@code rsqrt}, {@code reciprocal}: integral and bool inputs give the default float. */
    public static ElementwiseMeta floatFunction(Call c) {
        return ElementwiseMeta.compute(c, Promotion.INT_TO_FLOAT, noFloat8(c, 0));
    }

    /** {@code div_.Tensor}: true division into self, which must be able to hold a float. */
    public static ElementwiseMeta divInPlace(Call c) {
        return ElementwiseMeta.into(c, 0, Promotion.INT_TO_FLOAT, noFloat8(c, 0, 1));
    }

    /** {@code clamp(self, min?, max?)}: promoted with its bounds (an int tensor clamped to 0.5 becomes float). */
    public static ElementwiseMeta clamp(Call c) {
        if (c.arg(1) == null && c.arg(2) == null) throw c.error(1, "torch.clamp: At least one of 'min' or 'max' must not be None");
        if (c.tensor(0).dtype().isBool()) throw notImplemented(c, "clamp", DType.BOOL, 0);
        noFloat8(c, 0);
        return ElementwiseMeta.compute(c, Promotion.DEFAULT, new int[] {0, 1, 2}, 0);
    }

    /** A clamp bound (argument 1 or 2) as a value of the common dtype, or null when absent. */
    public static Scalar clampBound(Call c, int arg, ElementwiseMeta m) {
        return c.arg(arg) == null ? null : ScalarCast.to(c, arg, m.commonDtype());
    }

    /** {@code where.self(condition, self, other)}: a bool condition, self and other promoted. */
    public static ElementwiseMeta where(Call c) {
        DType cond = c.tensor(0).dtype();
        if (!cond.isBool()) throw c.error(0, "where expected condition to be a boolean tensor, but got a tensor with dtype " + cond);
        return ElementwiseMeta.compute(c, Promotion.DEFAULT, new int[] {1, 2}, 0, 1, 2);
    }

    /**
     * {@code masked_fill_.Scalar(self, mask, value)}: a bool mask that broadcasts to self's shape (self
     * is never resized), the value converted to self's dtype with PyTorch's overflow check. Returns
     * the mask viewed at self's shape; the caller closes it.
     */
    public static Tensor maskedFill(Call c) {
        Tensor self = c.tensor(0), mask = c.tensor(1);
        if (!mask.dtype().isBool()) {
            throw c.error(1, "masked_fill_ only supports boolean masks, but got mask with dtype " + mask.dtype());
        }
        long[] shape = Shapes.broadcast(self.sizes(), mask.sizes());
        if (shape == null || !Arrays.equals(shape, self.sizes())) {
            throw c.error(1, "mask of shape " + Arrays.toString(mask.sizes()) + " does not broadcast to self's shape "
                    + Arrays.toString(self.sizes()));
        }
        if (Overlap.hasInternalOverlap(self)) {
            throw c.error(0, "unsupported operation: more than one element of the written-to tensor refers to a single"
                    + " memory location. Please clone() the tensor before performing the operation.");
        }
        if (Overlap.status(self, mask) == Overlap.Status.PARTIAL) {
            throw c.error(1, "unsupported operation: some elements of the input tensor and the written-to tensor refer"
                    + " to a single memory location. Please clone() the tensor before performing the operation.");
        }
        ScalarCast.to(c, 2, self.dtype());
        return Broadcast.expand(mask, self.sizes());
    }

    // ---- checks -----------------------------------------------------------------------------

    private static void integralOnly(Call c, DType t, int arg) {
        if (t.isFloatingPoint()) throw notImplemented(c, c.op().substring(c.op().indexOf("::") + 2).split("\\.")[0], t, arg);
    }

    /** PyTorch has no compute kernels for float8 (a storage format): refused before allocating. */
    private static int[] noFloat8(Call c, int... operands) {
        for (int i : operands) {
            if (c.arg(i) instanceof Tensor t && t.dtype().isFloat8()) throw notImplemented(c, c.op(), t.dtype(), i);
        }
        return operands;
    }

    private static RuntimeException notImplemented(Call c, String kernel, DType t, int arg) {
        return c.error(arg, "\"" + kernel + "_cpu\" not implemented for '" + t + "'");
    }
}
