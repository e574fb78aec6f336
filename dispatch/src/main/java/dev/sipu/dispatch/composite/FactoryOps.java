package dev.sipu.dispatch.composite;

import dev.sipu.api.DType;
import dev.sipu.api.Device;
import dev.sipu.api.Scalar;
import dev.sipu.api.Tensor;
import dev.sipu.api.TypePromotion;
import dev.sipu.dispatch.Call;
import dev.sipu.dispatch.DispatchKey;
import dev.sipu.dispatch.spi.Registrar;

/** Factories PyTorch defines as empty + fill: one decomposition for every device. */
final class FactoryOps {
    private FactoryOps() {}

    static void register(Registrar r) {
        // full(size, fill_value, *, dtype, layout, device, pin_memory): dtype follows the value when None.
        r.register("aten::full", DispatchKey.COMPOSITE, c -> {
            Scalar v = c.scalar(1);
            DType dtype = c.dtype(2) != null ? c.dtype(2)
                    : v.isFloatingPoint() ? TypePromotion.DEFAULT_FLOAT : v.dtype();
            return filled(c, c.ints(0), v, dtype, device(c, 4));
        });
        r.register("aten::ones", DispatchKey.COMPOSITE, c -> filled(c, c.ints(0), Scalar.of(1), floatDefault(c.dtype(1)), device(c, 3)));
        r.register("aten::zeros", DispatchKey.COMPOSITE, c -> filled(c, c.ints(0), Scalar.of(0), floatDefault(c.dtype(1)), device(c, 3)));
        r.register("aten::scalar_tensor", DispatchKey.COMPOSITE,
                c -> filled(c, new long[0], c.scalar(0), floatDefault(c.dtype(1)), device(c, 3)));
        r.register("aten::empty_like", DispatchKey.COMPOSITE, c -> like(c).empty());
        r.register("aten::zeros_like", DispatchKey.COMPOSITE, c -> {
            Like l = like(c);
            return filled(c, l.sizes, Scalar.of(0), l.dtype, l.device);
        });
    }

    private static DType floatDefault(DType d) { return d != null ? d : TypePromotion.DEFAULT_FLOAT; }

    private static Device device(Call c, int i) {
        Device d = c.deviceArg(i);
        return d != null ? d : c.device();
    }

    private static Tensor filled(Call c, long[] sizes, Scalar value, DType dtype, Device device) {
        for (long s : sizes) if (s < 0) throw c.error(0, "negative dimension " + s + " in size " + java.util.Arrays.toString(sizes));
        Tensor t = c.ops().empty(sizes, dtype, device);
        try {
            c.ops().fill_(t, value);
            return t;
        } catch (RuntimeException e) {
            t.close();
            throw e;
        }
    }

    private record Like(Call c, long[] sizes, DType dtype, Device device) {
        Tensor empty() { return c.ops().empty(sizes, dtype, device); }
    }

    // *_like(self, *, dtype, layout, device, pin_memory, memory_format)
    private static Like like(Call c) {
        Tensor self = c.tensor(0);
        DType dtype = c.dtype(1) != null ? c.dtype(1) : self.dtype();
        Device device = c.deviceArg(3) != null ? c.deviceArg(3) : self.device();
        return new Like(c, self.sizes(), dtype, device);
    }
}
