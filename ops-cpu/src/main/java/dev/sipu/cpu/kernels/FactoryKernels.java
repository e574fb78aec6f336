package dev.sipu.cpu.kernels;

import dev.sipu.api.DType;
import dev.sipu.api.Elements;
import dev.sipu.api.Scalar;
import dev.sipu.api.Tensor;
import dev.sipu.cpu.loops.Fill;
import dev.sipu.dispatch.Call;
import dev.sipu.dispatch.meta.FactoryMeta;
import dev.sipu.dispatch.meta.ScalarCast;
import dev.sipu.dispatch.spi.Registrar;

import java.lang.foreign.MemorySegment;

import static dev.sipu.dispatch.DispatchKey.CPU;

/** empty, arange, fill_ and zero_ on the CPU. */
public final class FactoryKernels {
    private FactoryKernels() {}

    public static void register(Registrar r) {
        r.register("aten::empty.memory_format", CPU, FactoryMeta::empty);
        r.register("aten::empty_strided", CPU, FactoryMeta::emptyStrided);
        r.register("aten::arange", CPU, FactoryKernels::arange);
        r.register("aten::arange.start_step", CPU, FactoryKernels::arange);
        r.register("aten::arange.start_out", CPU, FactoryKernels::arange);
        r.register("aten::fill_.Scalar", CPU, c -> fill(c.tensor(0), ScalarCast.to(c, 1, c.tensor(0).dtype())));
        r.register("aten::fill_.Tensor", CPU, c -> {
            Tensor v = c.tensor(1);
            if (v.dim() != 0) {
                throw c.error(1, "fill_ only supports 0-dimension value tensor but got tensor with " + v.dim() + " dimensions.");
            }
            return fill(c.tensor(0), ScalarCast.to(c, 1, item(v), c.tensor(0).dtype()));
        });
        r.register("aten::zero_", CPU, c -> fill(c.tensor(0), ScalarCast.to(c, 0, Scalar.of(0L), c.tensor(0).dtype())));
    }

    private static Tensor fill(Tensor self, Scalar value) {
        Fill.fill(self, value);
        return self;
    }

    /** The value of a one-element tensor as the Scalar PyTorch's item() gives. */
    private static Scalar item(Tensor v) {
        if (v.dtype().isFloatingPoint()) return Scalar.of(Elements.getDouble(v, 0));
        if (v.dtype().isBool()) return Scalar.of(Elements.getLong(v, 0) != 0);
        return Scalar.of(Elements.getLong(v, 0));
    }

    /** Values start + i*step, computed in the dtype's accumulate type, then rounded once. */
    private static Tensor arange(Call c) {
        FactoryMeta.Arange plan = FactoryMeta.arange(c);
        Tensor out = FactoryMeta.arangeOutput(c, plan);
        MemorySegment m = out.storage().memory();
        DType t = out.dtype();
        long at = out.byteOffset(), step = plan.count() > 1 ? out.stride(0) * t.itemSize() : 0;
        for (long i = 0; i < plan.count(); i++, at += step) {
            if (t.isIntegral()) Elements.putLong(m, at, t, plan.longAt(i));
            else Elements.putDouble(m, at, t, plan.doubleAt(i));
        }
        return out;
    }
}
