package dev.sipu.cpu.kernels;

import dev.sipu.api.DType;
import dev.sipu.api.Scalar;
import dev.sipu.api.Tensor;
import dev.sipu.cpu.loops.BinaryOp;
import dev.sipu.cpu.loops.Pointwise;
import dev.sipu.cpu.loops.UnaryOp;
import dev.sipu.cpu.simd.Floats;
import dev.sipu.cpu.simd.Vec;
import dev.sipu.dispatch.Call;
import dev.sipu.dispatch.meta.ArithmeticMeta;
import dev.sipu.dispatch.meta.ElementwiseMeta;
import dev.sipu.dispatch.spi.Registrar;

import static dev.sipu.dispatch.DispatchKey.CPU;

/**
 * Arithmetic and activations: the shared meta checks and promotes, {@link Pointwise} iterates, and
 * each op is its function in the three compute types (fp32 as a {@link Vec} primitive on tiles).
 */
public final class ElementwiseKernels {
    private ElementwiseKernels() {}

    static final BinaryOp MUL = new BinaryOp(Vec::mul, (x, y) -> x * y, (x, y) -> x * y);
    static final BinaryOp DIV = new BinaryOp(Vec::div, (x, y) -> x / y, null);
    static final UnaryOp NEG = new UnaryOp(Vec::neg, x -> -x, x -> -x);
    static final UnaryOp SIGMOID = new UnaryOp(Vec::sigmoid, x -> 1 / (1 + Math.exp(-x)), null);
    static final UnaryOp SILU = new UnaryOp(Vec::silu, x -> x / (1 + Math.exp(-x)), null);

    /** {@code x + alpha * y} with alpha already a value of the common dtype; fused (one rounding) as PyTorch's fmadd. */
    static BinaryOp addScaled(Scalar alpha) {
        float f = (float) alpha.toDouble();
        double d = alpha.toDouble();
        long l = alpha.toLong();
        return new BinaryOp((x, y, out, n) -> Vec.addScaled(x, y, f, out, n), (x, y) -> Math.fma(d, y, x), (x, y) -> x + l * y);
    }

    public static void register(Registrar r) {
        r.register("aten::add.Tensor", CPU, ElementwiseKernels::addSub);
        r.register("aten::sub.Tensor", CPU, ElementwiseKernels::addSub);
        r.register("aten::mul.Tensor", CPU, c -> withScalarOther(ArithmeticMeta.mul(c), MUL, Vec::scale));
        r.register("aten::div.Tensor", CPU, c -> withScalarOther(ArithmeticMeta.div(c), DIV, Vec::divBy));
        r.register("aten::neg", CPU, c -> unary(ArithmeticMeta.neg(c), NEG));
        r.register("aten::sigmoid", CPU, c -> unary(ArithmeticMeta.sigmoid(c), SIGMOID));
        r.register("aten::silu", CPU, c -> unary(ArithmeticMeta.silu(c), SILU));
    }

    private static Tensor addSub(Call c) {
        try (ElementwiseMeta m = ArithmeticMeta.addSub(c)) {
            Pointwise.binary(m, addScaled(ArithmeticMeta.alpha(c, m)));
            return m.takeOutput();
        }
    }

    private static Tensor unary(ElementwiseMeta m, UnaryOp op) {
        try (m) {
            Pointwise.unary(m, op);
            return m.takeOutput();
        }
    }

    /** The fp32 form of a binary op whose second operand is one float. */
    private interface ScalarTile {
        void apply(float[] x, float s, float[] out, int n);
    }

    /**
     * mul and div with a bf16/fp16 result read a one-element {@code other} at its own precision (an
     * fp32 0-dim tensor is not rounded to bf16 first): PyTorch's CPU kernels take it as an fp32
     * scalar (TensorIterator's {@code original_scalar_value}) instead of a converted operand.
     */
    private static Tensor withScalarOther(ElementwiseMeta m, BinaryOp op, ScalarTile scalarOp) {
        try (m) {
            DType common = m.commonDtype();
            Tensor other = m.original(1);
            if ((common == DType.BFLOAT16 || common == DType.FLOAT16) && other.numel() == 1) {
                float s = Floats.loadOne(other.dtype(), other.storage().memory(), other.byteOffset());
                Pointwise.unary(m, new UnaryOp((x, out, n) -> scalarOp.apply(x, s, out, n), null, null));
            } else {
                Pointwise.binary(m, op);
            }
            return m.takeOutput();
        }
    }
}
