package dev.sipu.sipu.kernels;

import dev.sipu.api.DType;
import dev.sipu.api.Device;
import dev.sipu.api.Elements;
import dev.sipu.api.Scalar;
import dev.sipu.api.Tensor;
import dev.sipu.dispatch.Call;
import dev.sipu.dispatch.meta.Broadcast;
import dev.sipu.dispatch.meta.FactoryMeta;
import dev.sipu.dispatch.spi.Registrar;
import dev.sipu.ffm.gen.SipuKernels;
import dev.sipu.sipu.Native;

import java.lang.foreign.Arena;
import java.util.Arrays;

import static dev.sipu.dispatch.DispatchKey.SIPU;

/** empty, arange, fill and copy on SIPU. */
final class FactoryKernels {
    private FactoryKernels() {}

    static void register(Registrar r) {
        r.register("aten::empty.memory_format", SIPU,
                c -> c.dispatcher().empty(FactoryMeta.sizes(c, 0), FactoryMeta.dtypeOrDefault(c, 1), device(c, 3)));
        r.register("aten::empty_strided", SIPU, c -> {
            long[] sizes = FactoryMeta.sizes(c, 0), strides = c.ints(1);
            if (strides.length != sizes.length) throw c.error(1, "expected " + sizes.length + " strides, got " + strides.length);
            for (long s : strides) if (s < 0) throw c.error(1, "negative stride " + s);
            return c.dispatcher().emptyStrided(sizes, strides, FactoryMeta.dtypeOrDefault(c, 2), device(c, 4));
        });
        r.register("aten::arange", SIPU, c -> arange(c, Scalar.of(0L), c.scalar(0), Scalar.of(1L), c.dtype(1), device(c, 3), 0));
        r.register("aten::arange.start_step", SIPU,
                c -> arange(c, c.scalar(0), c.scalar(1), c.scalar(2), c.dtype(3), device(c, 5), 2));
        r.register("aten::arange.start_out", SIPU, c -> {
            Tensor out = c.tensor(3);
            FactoryMeta.Arange plan = FactoryMeta.arange(c, c.scalar(0), c.scalar(1), c.scalar(2), out.dtype(), 2);
            if (out.numel() != plan.count()) {
                throw c.error(3, "has " + out.numel() + " elements but the range has " + plan.count() + " (out= tensors are not resized)");
            }
            fillRange(c, out, plan);
            return out;
        });
        r.register("aten::fill_.Scalar", SIPU, c -> fill(c, c.tensor(0), c.scalar(1)));
        r.register("aten::fill_.Tensor", SIPU, c -> {
            Tensor v = c.tensor(1);
            if (v.dim() != 0) throw c.error(1, "fill_ only supports 0-dimension value tensor but got tensor with " + v.dim() + " dimensions.");
            try (Tensor h = c.dispatcher().to(v, Device.CPU)) {
                Scalar s = h.dtype().isFloatingPoint() ? Scalar.of(Elements.getDouble(h, 0))
                        : h.dtype().isBool() ? Scalar.of(Elements.getLong(h, 0) != 0) : Scalar.of(Elements.getLong(h, 0));
                return fill(c, c.tensor(0), s);
            }
        });
        r.register("aten::zero_", SIPU, c -> fill(c, c.tensor(0), Scalar.of(0L)));
        r.register("aten::copy_", SIPU, c -> {
            Tensor self = c.tensor(0), src = c.tensor(1);
            long[] shape = self.sizes();
            if (dev.sipu.api.Shapes.expandStrides(src.sizes(), src.strides(), shape) == null) {
                throw c.error(1, "the size of src " + Arrays.toString(src.sizes()) + " does not broadcast to self " + Arrays.toString(shape));
            }
            if (self.numel() == 0) return self;
            Tensor from = self.sharesStorageWith(src) ? c.ops().contiguousCopy(src) : src;
            try (Arena a = Arena.ofConfined()) {
                Native.check(c.op(), SipuKernels.sipu_copy(Native.desc(a, c, 0, self),
                        Native.desc(a, c.op(), "src", from, shape, Broadcast.strides(from, shape))));
            } finally {
                if (from != src) from.close();
            }
            return self;
        });
    }

    private static Device device(Call c, int i) {
        Device d = c.deviceArg(i);
        return d != null ? d : c.device();
    }

    private static Tensor arange(Call c, Scalar start, Scalar end, Scalar step, DType dtype, Device device, int stepArg) {
        FactoryMeta.Arange plan = FactoryMeta.arange(c, start, end, step, dtype, stepArg);
        Tensor out = c.dispatcher().empty(new long[] {plan.count()}, plan.dtype(), device);
        try {
            fillRange(c, out, plan);
            return out;
        } catch (RuntimeException e) {
            out.close();
            throw e;
        }
    }

    private static void fillRange(Call c, Tensor out, FactoryMeta.Arange plan) {
        if (out.numel() == 0) return;
        Tensor target = out.isContiguous() ? out : c.dispatcher().empty(out.sizes(), out.dtype(), out.device());
        try (Arena a = Arena.ofConfined()) {
            Native.check(c.op(), SipuKernels.sipu_arange(Native.desc(a, c.op(), "out", target, target.sizes(), target.strides()),
                    plan.start().toDouble(), plan.step().toDouble(), plan.start().toLong(), plan.step().toLong()));
        }
        if (target != out) {
            try (target) {
                c.ops().copy_(out, target);
            }
        }
    }

    static Tensor fill(Call c, Tensor self, Scalar value) {
        if (self.numel() == 0) return self;
        try (Arena a = Arena.ofConfined()) {
            boolean floatValue = value.isFloatingPoint();
            long iv = floatValue ? dev.sipu.api.Conversions.doubleToInt64(value.toDouble()) : value.toLong();
            Native.check(c.op(), SipuKernels.sipu_fill(Native.desc(a, c, 0, self), value.toDouble(), iv));
        }
        return self;
    }
}
