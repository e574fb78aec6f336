package dev.sipu.sipu.kernels;

import dev.sipu.api.Scalar;
import dev.sipu.api.Tensor;
import dev.sipu.dispatch.Call;
import dev.sipu.dispatch.meta.ArithmeticMeta;
import dev.sipu.dispatch.meta.ElementwiseMeta;
import dev.sipu.dispatch.spi.Registrar;
import dev.sipu.ffm.gen.SipuKernels;
import dev.sipu.sipu.Native;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;

import static dev.sipu.dispatch.DispatchKey.SIPU;

/**
 * Arithmetic and activations on SIPU: the shared meta checks, promotes, broadcasts and allocates;
 * the C iteration core computes (broadcast inputs arrive with stride 0, never materialized).
 */
final class ElementwiseKernels {
    private ElementwiseKernels() {}

    static void register(Registrar r) {
        // sub runs as add with -alpha (ArithmeticMeta.alpha negates it), as PyTorch does
        r.register("aten::add.Tensor", SIPU, c -> addSub(c));
        r.register("aten::sub.Tensor", SIPU, c -> addSub(c));
        r.register("aten::mul.Tensor", SIPU, c -> binary(c, ArithmeticMeta.mul(c), SipuKernels.SIPU_BINARY_MUL(), 1));
        r.register("aten::div.Tensor", SIPU, c -> binary(c, ArithmeticMeta.div(c), SipuKernels.SIPU_BINARY_DIV(), 1));
        r.register("aten::neg", SIPU, c -> unary(c, ArithmeticMeta.neg(c), SipuKernels.SIPU_UNARY_NEG()));
        r.register("aten::sigmoid", SIPU, c -> unary(c, ArithmeticMeta.sigmoid(c), SipuKernels.SIPU_UNARY_SIGMOID()));
        r.register("aten::silu", SIPU, c -> unary(c, ArithmeticMeta.silu(c), SipuKernels.SIPU_UNARY_SILU()));
    }

    private static Tensor addSub(Call c) {
        ElementwiseMeta m = ArithmeticMeta.addSub(c);
        Scalar alpha;
        try {
            alpha = ArithmeticMeta.alpha(c, m);
        } catch (RuntimeException e) {
            m.close();
            throw e;
        }
        return binary(c, m, SipuKernels.SIPU_BINARY_ADD(), alpha.toDouble());
    }

    /** out = input(0) op input(1), or op with {@code scalar} when the meta has one tensor input. */
    static Tensor binary(Call c, ElementwiseMeta m, int op, double alpha) {
        return binary(c, m, op, alpha, null);
    }

    static Tensor binary(Call c, ElementwiseMeta m, int op, double alpha, Scalar scalar) {
        try (m; Arena a = Arena.ofConfined()) {
            Tensor out = m.output();
            if (out.numel() > 0) {
                MemorySegment b = scalar != null ? MemorySegment.NULL : desc(a, c, m.input(1), "other");
                Native.check(c.op(), SipuKernels.sipu_binary(op, desc(a, c, out, "out"), desc(a, c, m.input(0), "self"), b,
                        scalar == null ? 0 : scalar.toDouble(), alpha, m.commonDtype().code()));
            }
            return m.takeOutput();
        }
    }

    static Tensor unary(Call c, ElementwiseMeta m, int op) {
        try (m; Arena a = Arena.ofConfined()) {
            Tensor out = m.output();
            if (out.numel() > 0) {
                Native.check(c.op(), SipuKernels.sipu_unary(op, desc(a, c, out, "out"), desc(a, c, m.input(0), "self")));
            }
            return m.takeOutput();
        }
    }

    static MemorySegment desc(Arena a, Call c, Tensor t, String name) {
        return Native.desc(a, c.op(), name, t, t.sizes(), t.strides());
    }
}
