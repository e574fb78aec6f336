package dev.sipu.dispatch.meta;

import dev.sipu.api.DType;
import dev.sipu.api.Scalar;
import dev.sipu.api.Shapes;
import dev.sipu.api.Tensor;
import dev.sipu.api.TypePromotion;
import dev.sipu.dispatch.Call;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.List;

/**
 * The device-independent half of an elementwise op, as PyTorch's structured kernels and
 * TensorIterator split it: the broadcast shape, the dtypes, the output, and each tensor operand
 * viewed at the output's shape (stride 0 on broadcast dims). A device kernel only has to fill the
 * output from same-shaped inputs.
 *
 * <p>Operands are argument indices of the call; each is a Tensor or a Scalar. A Scalar takes part in
 * type promotion at the lowest priority and is then wrapped, as PyTorch wraps it, in a 0-dim tensor
 * of its own dtype (int64, float64 or bool) on the call's device, so {@link #inputs()} lists every
 * operand and kernels convert a wrapped scalar to the common dtype on load like any other input
 * (unchecked, wrapping: {@code int8_tensor == 1000} is false, not an error).
 *
 * <p>Dtypes: {@link #commonDtype()} is what every input is converted to before the op (PyTorch's
 * {@code common_dtype}); {@link #computeDtype()} is the type the arithmetic runs in (fp32 for fp32,
 * fp16 and bf16, which then round once; double for fp64; int64 for integers and bool, which then
 * wrap); the output's dtype is the result dtype, or the given output's own dtype.
 *
 * <p>Owns the input views and, until {@link #takeOutput()}, a freshly allocated output: close it.
 */
public final class ElementwiseMeta implements AutoCloseable {
    private final long[] shape;
    private final DType common;
    private final Tensor output;
    private final boolean ownsOutput;
    private final List<Tensor> originals;
    private final List<Tensor> inputs;
    private final List<Tensor> wrapped;
    private boolean taken;

    private ElementwiseMeta(long[] shape, DType common, Tensor output, boolean ownsOutput,
                            List<Tensor> originals, List<Tensor> inputs, List<Tensor> wrapped) {
        this.shape = shape;
        this.common = common;
        this.output = output;
        this.ownsOutput = ownsOutput;
        this.originals = originals;
        this.inputs = inputs;
        this.wrapped = wrapped;
    }

    /** A new output on the call's device: {@code out = op(operands...)}. */
    public static ElementwiseMeta compute(Call c, Promotion promotion, int... operands) {
        return compute(c, promotion, operands, operands);
    }

    /**
     * A new output whose dtype comes from the {@code promoted} arguments and whose inputs are the
     * {@code operands}: {@code where(cond, a, b)} promotes a and b but also broadcasts cond;
     * {@code clamp(x, min, max)} promotes with its scalar bounds, which the kernel takes as values.
     */
    public static ElementwiseMeta compute(Call c, Promotion promotion, int[] promoted, int... operands) {
        long[] shape = broadcastShape(c, operands);
        DType common = promotion.common(promoted(c, promoted));
        Tensor out = c.dispatcher().empty(shape, promotion.result(common), c.device());
        return withInputs(c, shape, common, out, true, operands);
    }

    /**
     * Writes the existing tensor argument {@code out} (in-place and {@code out=} ops). Its shape must
     * be the broadcast shape, the result dtype must cast to its dtype without changing category, it
     * must not store two elements at one address, and no input may partially overlap it.
     */
    public static ElementwiseMeta into(Call c, int out, Promotion promotion, int... operands) {
        long[] shape = broadcastShape(c, operands);
        DType common = promotion.common(promoted(c, operands));
        Tensor o = c.tensor(out);
        checkOut(c, out, o, promotion.result(common), shape);
        checkNoPartialOverlap(c, out, operands);
        return withInputs(c, shape, common, o, false, operands);
    }

    /**
     * {@code copy_(dst, src)}: src broadcast to dst's shape, every element converted to dst's dtype.
     * When both are the same view of the same elements the copy is a no-op: {@link #inputs()} is empty.
     */
    public static ElementwiseMeta copy(Call c, int dst, int src) {
        Tensor d = c.tensor(dst), s = c.tensor(src);
        if (Overlap.isSameView(d, s)) return new ElementwiseMeta(d.sizes(), d.dtype(), d, false, List.of(), List.of(), List.of());
        long[] shape = broadcastShape(c, new int[] {dst, src});
        checkOutput(c, dst, d, shape);
        checkNoPartialOverlap(c, dst, new int[] {src});
        return withInputs(c, d.sizes(), d.dtype(), d, false, new int[] {src});
    }

    public long[] shape() { return shape.clone(); }

    public long numel() { return Shapes.numel(shape); }

    /** The dtype inputs are converted to before the op. */
    public DType commonDtype() { return common; }

    /** The dtype the arithmetic runs in. */
    public DType computeDtype() { return computeDtype(common); }

    /** fp32 for fp32 and the narrow floats, fp64 for fp64, int64 for integers and bool. */
    public static DType computeDtype(DType common) {
        if (common == DType.FLOAT64) return DType.FLOAT64;
        return common.isFloatingPoint() ? DType.FLOAT32 : DType.INT64;
    }

    public Tensor output() { return output; }

    /** The operands viewed at the output's shape, in operand order. */
    public List<Tensor> inputs() { return inputs; }

    public Tensor input(int i) { return inputs.get(i); }

    /** Operand {@code i} as the caller passed it (before broadcasting; a wrapped scalar is 0-dim). */
    public Tensor original(int i) { return originals.get(i); }

    /** Hands a freshly allocated output to the caller, who then owns it (returns it from the kernel). */
    public Tensor takeOutput() {
        taken = true;
        return output;
    }

    /** Closes the input views, and a fresh output that was not taken (the op failed). */
    @Override
    public void close() {
        inputs.forEach(Tensor::close);
        wrapped.forEach(Tensor::close);
        if (ownsOutput && !taken) output.close();
    }

    // ---- the rules, usable alone (kernels that walk strides themselves, e.g. in C) ----------

    /** PyTorch's {@code result_type} of two tensors. */
    public static DType promote(Call c, Tensor a, Tensor b) {
        try {
            return TypePromotion.resultType(a, b);
        } catch (IllegalArgumentException e) {
            throw c.error(1, e.getMessage());
        }
    }

    /** True division: integral and bool operands give the default float. */
    public static DType div(Call c, Tensor a, Tensor b) {
        return Promotion.INT_TO_FLOAT.common(promote(c, a, b));
    }

    /** Unary float functions ({@code sigmoid}): integral and bool inputs give the default float. */
    public static DType floatUnary(Tensor a) {
        return Promotion.INT_TO_FLOAT.common(a.dtype());
    }

    /**
     * {@code add}/{@code sub} (self = argument 0, other = argument 1, alpha = argument 2): the result
     * dtype, after PyTorch's checks: no subtraction with bool tensors, a bool alpha only for bool
     * results, no float alpha for integral (or bool) results.
     */
    public static DType addSub(Call c, Tensor a, Tensor b, Scalar alpha) {
        if (c.op().startsWith("aten::sub")) {
            if (a.dtype().isBool() && b.dtype().isBool()) {
                throw c.error(1, "Subtraction, the `-` operator, with two bool tensors is not supported. "
                        + "Use the `^` or `logical_xor()` operator instead.");
            }
            if (a.dtype().isBool() || b.dtype().isBool()) {
                throw c.error(a.dtype().isBool() ? 0 : 1, "Subtraction, the `-` operator, with a bool tensor is not "
                        + "supported. If you are trying to invert a mask, use the `~` or `logical_not()` operator instead.");
            }
        }
        DType r = promote(c, a, b);
        checkAlpha(c, 2, alpha, r);
        return r;
    }

    /** PyTorch's {@code alpha_check} of argument {@code arg} against the op's common dtype. */
    public static void checkAlpha(Call c, int arg, Scalar alpha, DType common) {
        if (alpha.isBool() && !common.isBool()) throw c.error(arg, "Boolean alpha only supported for Boolean results.");
        if (alpha.isFloatingPoint() && !common.isFloatingPoint()) {
            throw c.error(arg, "For integral input tensors, argument alpha must not be a floating point number.");
        }
    }

    /** Checks that an {@code out=} or in-place tensor can hold a result of {@code result} dtype and shape. */
    public static void checkOut(Call c, int arg, Tensor out, DType result, long[] shape) {
        checkOutput(c, arg, out, shape);
        if (!canCast(result, out.dtype())) {
            throw c.error(arg, "result type " + result + " can't be cast to the desired output type " + out.dtype());
        }
    }

    /** c10::canCast: no float to integral, no non-bool to bool. */
    public static boolean canCast(DType from, DType to) {
        if (from.isFloatingPoint() && to.isIntegral()) return false;
        return from.isBool() || !to.isBool();
    }

    // ---- internals ---------------------------------------------------------------------------

    private static long[] broadcastShape(Call c, int[] operands) {
        if (Arrays.stream(operands).noneMatch(i -> c.arg(i) instanceof Tensor)) {
            throw new IllegalArgumentException(c.op() + ": an elementwise op needs a tensor operand");
        }
        return Broadcast.shape(c, operands);
    }

    private static DType promoted(Call c, int[] operands) {
        TypePromotion.State state = TypePromotion.state();
        int last = operands[0];
        try {
            for (int i : operands) {
                last = i;
                if (c.arg(i) instanceof Tensor t) state.tensor(t);
                else if (c.arg(i) instanceof Scalar s) state.scalar(s);
                else if (c.arg(i) != null) throw c.error(i, "expected a Tensor or a Scalar operand");
            }
        } catch (IllegalArgumentException e) {
            throw c.error(last, e.getMessage());
        }
        return state.result();
    }

    private static void checkOutput(Call c, int out, Tensor o, long[] shape) {
        if (!Arrays.equals(o.sizes(), shape)) {
            throw c.error(out, "output with shape " + Arrays.toString(o.sizes()) + " doesn't match the broadcast shape "
                    + Arrays.toString(shape));
        }
        if (Overlap.hasInternalOverlap(o)) {
            throw c.error(out, "unsupported operation: more than one element of the written-to tensor refers to a single"
                    + " memory location. Please clone() the tensor before performing the operation.");
        }
    }

    private static void checkNoPartialOverlap(Call c, int out, int[] operands) {
        Tensor o = c.tensor(out);
        for (int i : operands) {
            if (i != out && c.arg(i) instanceof Tensor t && Overlap.status(o, t) == Overlap.Status.PARTIAL) {
                throw c.error(i, "unsupported operation: some elements of the input tensor and the written-to tensor refer"
                        + " to a single memory location. Please clone() the tensor before performing the operation.");
            }
        }
    }

    private static ElementwiseMeta withInputs(Call c, long[] shape, DType common, Tensor out, boolean ownsOutput,
                                              int[] operands) {
        List<Tensor> originals = new ArrayList<>(operands.length);
        List<Tensor> views = new ArrayList<>(operands.length);
        List<Tensor> wrapped = new ArrayList<>(1);
        try {
            for (int i : operands) {
                Tensor t;
                if (c.arg(i) instanceof Tensor given) {
                    t = given;
                } else {
                    t = wrap(c, (Scalar) c.arg(i));
                    wrapped.add(t);
                }
                originals.add(t);
                views.add(Broadcast.expand(t, shape));
            }
        } catch (RuntimeException e) {
            wrapped.forEach(Tensor::close);
            if (ownsOutput) out.close();
            throw e;
        }
        return new ElementwiseMeta(shape, common, out, ownsOutput, Collections.unmodifiableList(originals),
                Collections.unmodifiableList(views), List.copyOf(wrapped));
    }

    private static Tensor wrap(Call c, Scalar s) {
        Tensor t = c.dispatcher().empty(new long[0], s.dtype(), c.device());
        try {
            c.dispatcher().call("aten::fill_.Scalar", t, s);
            return t;
        } catch (RuntimeException e) {
            t.close();
            throw e;
        }
    }
}
