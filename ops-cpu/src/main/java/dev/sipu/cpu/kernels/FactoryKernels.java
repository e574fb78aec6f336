package dev.sipu.cpu.kernels;

import dev.sipu.api.DType;
import dev.sipu.api.Device;
import dev.sipu.api.Elements;
import dev.sipu.api.Scalar;
import dev.sipu.api.Tensor;
import dev.sipu.cpu.iter.StridedLoop;
import dev.sipu.dispatch.Call;
import dev.sipu.dispatch.DispatchKey;
import dev.sipu.dispatch.meta.FactoryMeta;
import dev.sipu.dispatch.spi.Registrar;

import java.lang.foreign.MemorySegment;

/** empty, arange and fill on the CPU. */
public final class FactoryKernels {
    private FactoryKernels() {}

    public static void register(Registrar r) {
        // empty.memory_format(size, *, dtype, layout, device, pin_memory, memory_format)
        r.register("aten::empty.memory_format", DispatchKey.CPU,
                c -> c.dispatcher().empty(FactoryMeta.sizes(c, 0), FactoryMeta.dtypeOrDefault(c, 1), device(c, 3)));
        // empty_strided(size, stride, *, dtype, layout, device, pin_memory)
        r.register("aten::empty_strided", DispatchKey.CPU, c -> {
            long[] sizes = FactoryMeta.sizes(c, 0), strides = c.ints(1);
            if (strides.length != sizes.length) throw c.error(1, "expected " + sizes.length + " strides, got " + strides.length);
            for (long s : strides) if (s < 0) throw c.error(1, "negative stride " + s);
            return c.dispatcher().emptyStrided(sizes, strides, FactoryMeta.dtypeOrDefault(c, 2), device(c, 4));
        });
        r.register("aten::arange", DispatchKey.CPU, c -> arange(c, Scalar.of(0L), c.scalar(0), Scalar.of(1L), c.dtype(1), device(c, 3), 0));
        r.register("aten::arange.start_step", DispatchKey.CPU,
                c -> arange(c, c.scalar(0), c.scalar(1), c.scalar(2), c.dtype(3), device(c, 5), 2));
        r.register("aten::arange.start_out", DispatchKey.CPU, c -> {
            Tensor out = c.tensor(3);
            FactoryMeta.Arange plan = FactoryMeta.arange(c, c.scalar(0), c.scalar(1), c.scalar(2), out.dtype(), 2);
            if (out.numel() != plan.count()) {
                throw c.error(3, "has " + out.numel() + " elements but the range has " + plan.count() + " (out= tensors are not resized)");
            }
            fillRange(out, plan);
            return out;
        });
        r.register("aten::fill_.Scalar", DispatchKey.CPU, c -> fill(c.tensor(0), c.scalar(1)));
        r.register("aten::fill_.Tensor", DispatchKey.CPU, c -> {
            Tensor v = c.tensor(1);
            if (v.dim() != 0) throw c.error(1, "fill_ only supports 0-dimension value tensor but got tensor with " + v.dim() + " dimensions.");
            Scalar s = v.dtype().isFloatingPoint() ? Scalar.of(Elements.getDouble(v, 0))
                    : v.dtype().isBool() ? Scalar.of(Elements.getLong(v, 0) != 0) : Scalar.of(Elements.getLong(v, 0));
            return fill(c.tensor(0), s);
        });
        r.register("aten::zero_", DispatchKey.CPU, c -> fill(c.tensor(0), Scalar.of(0L)));
    }

    private static Device device(Call c, int i) {
        return c.deviceArg(i) != null ? c.deviceArg(i) : Device.CPU;
    }

    private static Tensor arange(Call c, Scalar start, Scalar end, Scalar step, DType dtype, Device device, int stepArg) {
        FactoryMeta.Arange plan = FactoryMeta.arange(c, start, end, step, dtype, stepArg);
        Tensor out = c.dispatcher().empty(new long[] {plan.count()}, plan.dtype(), device);
        fillRange(out, plan);
        return out;
    }

    private static void fillRange(Tensor out, FactoryMeta.Arange plan) {
        MemorySegment m = out.storage().memory();
        DType t = out.dtype();
        boolean integral = t.isIntegral() && !plan.start().isFloatingPoint() && !plan.step().isFloatingPoint();
        for (long i = 0; i < plan.count(); i++) {
            long at = Elements.byteOffsetOf(out, i);
            if (integral) Elements.putLong(m, at, t, plan.start().toLong() + i * plan.step().toLong());
            else Elements.putDouble(m, at, t, plan.start().toDouble() + i * plan.step().toDouble());
        }
    }

    /** Every element of {@code self} = value, converted as PyTorch converts a Scalar. */
    static Tensor fill(Tensor self, Scalar value) {
        MemorySegment m = self.storage().memory();
        DType t = self.dtype();
        int item = t.itemSize();
        // Encode the value once, then replicate its bytes.
        try (Tensor one = Tensor.adopt(dev.sipu.api.CpuMemory.allocate(item), t)) {
            MemorySegment v = one.storage().memory();
            if (t.isFloatingPoint() || value.isFloatingPoint()) Elements.putDouble(v, 0, t, value.toDouble());
            else Elements.putLong(v, 0, t, value.toLong());
            StridedLoop.forEach(new Tensor[] {self}, (off, st, n) -> {
                for (long i = 0; i < n; i++) MemorySegment.copy(v, 0, m, off[0] + i * st[0], item);
            });
        }
        return self;
    }
}
