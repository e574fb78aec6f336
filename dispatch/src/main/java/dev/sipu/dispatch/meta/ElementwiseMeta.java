package dev.sipu.dispatch.meta;

import dev.sipu.api.DType;
import dev.sipu.api.Scalar;
import dev.sipu.api.Tensor;
import dev.sipu.api.TypePromotion;
import dev.sipu.dispatch.Call;

/**
 * Result dtypes and argument checks of the elementwise ops, as PyTorch's structured kernels compute
 * them before any device code runs. Shared by every device module.
 */
public final class ElementwiseMeta {
    private ElementwiseMeta() {}

    /** add/sub with alpha: PyTorch's result_type plus its alpha checks. */
    public static DType addSub(Call c, Tensor a, Tensor b, Scalar alpha) {
        DType r = promote(c, a, b);
        if (alpha != null && alpha.isBool() && !r.isBool()) {
            throw c.error(2, "Boolean alpha only supported for Boolean results.");
        }
        if (r.isIntegral() && alpha != null && alpha.isFloatingPoint()) {
            throw c.error(2, "for integral input tensors, argument alpha must not be a floating point number");
        }
        if (c.op().startsWith("aten::sub") && a.dtype().isBool() && b.dtype().isBool()) {
            throw c.error(0, "subtraction with two bool tensors is not supported; use the `^` or `logical_xor()` operator instead");
        }
        return r;
    }

    public static DType promote(Call c, Tensor a, Tensor b) {
        try {
            return TypePromotion.resultType(a, b);
        } catch (IllegalArgumentException e) {
            throw c.error(1, e.getMessage());
        }
    }

    /** True division: integral and bool results become the default float. */
    public static DType div(Call c, Tensor a, Tensor b) {
        DType r = promote(c, a, b);
        return r.isFloatingPoint() ? r : TypePromotion.DEFAULT_FLOAT;
    }

    /** Unary float functions (sigmoid, silu, ...): integers compute in the default float. */
    public static DType floatUnary(Tensor a) {
        return a.dtype().isFloatingPoint() ? a.dtype() : TypePromotion.DEFAULT_FLOAT;
    }

    /** Checks that an {@code out=} or in-place tensor can hold a result of {@code result} dtype and shape. */
    public static void checkOut(Call c, int arg, Tensor out, DType result, long[] shape) {
        if (!java.util.Arrays.equals(out.sizes(), shape)) {
            throw c.error(arg, "output with shape " + java.util.Arrays.toString(out.sizes())
                    + " doesn't match the broadcast shape " + java.util.Arrays.toString(shape));
        }
        if (!canCast(result, out.dtype())) {
            throw c.error(arg, "result type " + result + " can't be cast to the desired output type " + out.dtype());
        }
    }

    /** c10::canCast: no float into integral, no non-bool into bool. */
    public static boolean canCast(DType from, DType to) {
        if (from.isFloatingPoint() && !to.isFloatingPoint()) return false;
        return from.isBool() || !to.isBool();
    }
}
