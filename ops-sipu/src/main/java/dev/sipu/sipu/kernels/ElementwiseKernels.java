package dev.sipu.sipu.kernels;

import dev.sipu.api.DType;
import dev.sipu.api.Scalar;
import dev.sipu.api.Tensor;
import dev.sipu.dispatch.Call;
import dev.sipu.dispatch.meta.Broadcast;
import dev.sipu.dispatch.meta.ElementwiseMeta;
import dev.sipu.dispatch.spi.Registrar;
import dev.sipu.ffm.gen.SipuKernels;
import dev.sipu.sipu.Native;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;

import static dev.sipu.dispatch.DispatchKey.SIPU;

/**
 * Arithmetic and activations on SIPU: the shared meta decides shape and dtype, the C iteration core
 * does the rest (broadcast inputs are passed with stride 0, never materialized).
 */
final class ElementwiseKernels {
    private ElementwiseKernels() {}

    static void register(Registrar r) {
        r.register("aten::add.Tensor", SIPU, c -> addSub(c, SipuKernels.SIPU_BINARY_ADD()));
        r.register("aten::sub.Tensor", SIPU, c -> addSub(c, SipuKernels.SIPU_BINARY_SUB()));
        r.register("aten::mul.Tensor", SIPU,
                c -> binary(c, SipuKernels.SIPU_BINARY_MUL(), ElementwiseMeta.promote(c, c.tensor(0), c.tensor(1)), 1));
        r.register("aten::div.Tensor", SIPU,
                c -> binary(c, SipuKernels.SIPU_BINARY_DIV(), ElementwiseMeta.div(c, c.tensor(0), c.tensor(1)), 1));
        r.register("aten::neg", SIPU, c -> {
            if (c.tensor(0).dtype().isBool()) {
                throw c.error(0, "negation, the `-` operator, on a bool tensor is not supported; use `~` or `logical_not()` instead");
            }
            return unary(c, SipuKernels.SIPU_UNARY_NEG(), c.tensor(0).dtype());
        });
        r.register("aten::sigmoid", SIPU, c -> unary(c, SipuKernels.SIPU_UNARY_SIGMOID(), ElementwiseMeta.floatUnary(c.tensor(0))));
        r.register("aten::silu", SIPU, c -> unary(c, SipuKernels.SIPU_UNARY_SILU(), ElementwiseMeta.floatUnary(c.tensor(0))));
    }

    private static Tensor addSub(Call c, int op) {
        Scalar alpha = c.scalar(2);
        DType result = ElementwiseMeta.addSub(c, c.tensor(0), c.tensor(1), alpha);
        return binary(c, op, result, alpha.toDouble());
    }

    private static Tensor binary(Call c, int op, DType result, double alpha) {
        Tensor a = c.tensor(0), b = c.tensor(1);
        long[] shape = Broadcast.shape(c, 0, 1);
        Tensor out = c.dispatcher().empty(shape, result, c.device());
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment da = Native.desc(arena, c.op(), c.name(0), a, shape, Broadcast.strides(a, shape));
            MemorySegment db = Native.desc(arena, c.op(), c.name(1), b, shape, Broadcast.strides(b, shape));
            Native.check(c.op(), SipuKernels.sipu_binary(op, Native.desc(arena, c.op(), "out", out, shape, out.strides()),
                    da, db, 0, alpha));
            return out;
        } catch (RuntimeException e) {
            out.close();
            throw e;
        }
    }

    private static Tensor unary(Call c, int op, DType result) {
        Tensor a = c.tensor(0);
        Tensor out = c.dispatcher().empty(a.sizes(), result, c.device());
        try (Arena arena = Arena.ofConfined()) {
            Native.check(c.op(), SipuKernels.sipu_unary(op, Native.desc(arena, c.op(), "out", out, out.sizes(), out.strides()),
                    Native.desc(arena, c, 0, a)));
            return out;
        } catch (RuntimeException e) {
            out.close();
            throw e;
        }
    }
}
