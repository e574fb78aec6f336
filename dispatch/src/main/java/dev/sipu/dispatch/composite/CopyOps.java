package dev.sipu.dispatch.composite;

import dev.sipu.api.DType;
import dev.sipu.api.Device;
import dev.sipu.api.Layout;
import dev.sipu.api.Scalar;
import dev.sipu.api.Shapes;
import dev.sipu.api.Tensor;
import dev.sipu.dispatch.Call;
import dev.sipu.dispatch.DispatchKey;
import dev.sipu.dispatch.spi.Registrar;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/** Copies and casts PyTorch defines by {@code empty} + {@code copy_}, and padding and stacking built on them. */
final class CopyOps {
    private CopyOps() {}

    static void register(Registrar r) {
        r.register("aten::clone", DispatchKey.COMPOSITE, c -> copyAs(c, c.tensor(0), c.tensor(0).dtype(), c.device()));
        r.register("aten::contiguous", DispatchKey.COMPOSITE, c -> {
            Tensor t = c.tensor(0);
            return t.isContiguous() ? ViewOps.alias(t) : copyAs(c, t, t.dtype(), c.device());
        });
        // _to_copy(self, *, dtype, layout, device, pin_memory, non_blocking, memory_format)
        r.register("aten::_to_copy", DispatchKey.COMPOSITE, c -> {
            checkLayout(c, 2);
            Tensor t = c.tensor(0);
            DType dtype = c.dtype(1) != null ? c.dtype(1) : t.dtype();
            Device device = c.deviceArg(3) != null ? c.deviceArg(3) : t.device();
            return toCopy(c, t, dtype, device);
        });
        // to.dtype(self, dtype, non_blocking, copy, memory_format)
        r.register("aten::to.dtype", DispatchKey.COMPOSITE, c -> {
            Tensor t = c.tensor(0);
            DType dtype = c.dtype(1);
            return dtype == t.dtype() && !c.bool(3) ? ViewOps.alias(t) : toCopy(c, t, dtype, t.device());
        });
        // to.dtype_layout(self, *, dtype, layout, device, pin_memory, non_blocking, copy, memory_format)
        r.register("aten::to.dtype_layout", DispatchKey.COMPOSITE, c -> {
            checkLayout(c, 2);
            Tensor t = c.tensor(0);
            DType dtype = c.dtype(1) != null ? c.dtype(1) : t.dtype();
            Device device = c.deviceArg(3) != null ? c.deviceArg(3) : t.device();
            boolean same = dtype == t.dtype() && device.equals(t.device());
            return same && !c.bool(6) ? ViewOps.alias(t) : toCopy(c, t, dtype, device);
        });
        r.register("aten::stack", DispatchKey.COMPOSITE, CopyOps::stack);
        r.register("aten::constant_pad_nd", DispatchKey.COMPOSITE, c -> constantPad(c, c.tensor(0), c.ints(1), c.scalar(2)));
        r.register("aten::pad", DispatchKey.COMPOSITE, c -> {
            if (!"constant".equals(c.str(2))) throw c.error(2, "only mode 'constant' is supported, got '" + c.str(2) + "'");
            Double v = c.optF64(3);
            return constantPad(c, c.tensor(0), c.ints(1), Scalar.of(v == null ? 0.0 : v));
        });
    }

    private static void checkLayout(Call c, int i) {
        if (c.arg(i) != null && c.arg(i) != Layout.STRIDED) throw c.error(i, "only the strided layout is supported");
    }

    /** A contiguous copy of {@code t} with {@code dtype} on the call's device. */
    private static Tensor copyAs(Call c, Tensor t, DType dtype, Device device) {
        Tensor out = c.ops().empty(t.sizes(), dtype, device);
        try {
            c.ops().copy_(out, t);
            return out;
        } catch (RuntimeException e) {
            out.close();
            throw e;
        }
    }

    private static Tensor toCopy(Call c, Tensor t, DType dtype, Device device) {
        if (device.equals(t.device())) return copyAs(c, t, dtype, device);
        try (Tensor moved = c.dispatcher().to(t, device)) {
            return dtype == moved.dtype() ? ViewOps.alias(moved) : copyAs(c, moved, dtype, device);
        }
    }

    private static Tensor stack(Call c) {
        List<Tensor> ts = c.tensors(0);
        if (ts.isEmpty()) throw c.error(0, "stack expects a non-empty TensorList");
        long[] shape = ts.getFirst().sizes();
        int d = Shapes.wrapDim(c.op(), "dim", c.i64(1), shape.length + 1);
        List<Tensor> views = new ArrayList<>(ts.size());
        try {
            for (int i = 0; i < ts.size(); i++) {
                Tensor t = ts.get(i);
                if (!Arrays.equals(t.sizes(), shape)) {
                    throw c.error(0, "stack expects each tensor to be equal size, but got " + Arrays.toString(shape)
                            + " at entry 0 and " + Arrays.toString(t.sizes()) + " at entry " + i);
                }
                views.add(c.ops().unsqueeze(t, d));
            }
            return c.ops().cat(views, d);
        } finally {
            views.forEach(Tensor::close);
        }
    }

    /** pad = (last_left, last_right, prev_left, prev_right, ...); negative entries crop. */
    private static Tensor constantPad(Call c, Tensor t, long[] pad, Scalar value) {
        int n = t.dim();
        if (pad.length % 2 != 0) throw c.error(1, "length of pad must be even but instead it equals " + pad.length);
        if (pad.length / 2 > n) throw c.error(1, "length of pad should be no more than twice the number of dimensions of the input. Pad length is "
                + pad.length + " while the input has " + n + " dimensions.");
        long[] in = t.sizes(), out = t.sizes();
        for (int i = 0; i < pad.length / 2; i++) {
            int d = n - 1 - i;
            out[d] = in[d] + pad[2 * i] + pad[2 * i + 1];
            if (out[d] < 0) throw c.error(1, "the input size " + in[d] + ", plus negative padding " + pad[2 * i] + " and "
                    + pad[2 * i + 1] + " resulted in a negative output size, which is invalid. Check dimension " + d + " of your input.");
        }
        Tensor result = c.ops().full(out, value, t.dtype(), c.device());
        Tensor src = ViewOps.alias(t), dst = ViewOps.alias(result);
        try {
            for (int i = 0; i < pad.length / 2; i++) {
                int d = n - 1 - i;
                long left = pad[2 * i], right = pad[2 * i + 1];
                long keep = in[d] - Math.max(0, -left) - Math.max(0, -right);
                if (keep <= 0) return result;
                Tensor s2 = ViewOps.narrowView(src, d, Math.max(0, -left), keep);
                Tensor d2 = ViewOps.narrowView(dst, d, Math.max(0, left), keep);
                src.close();
                dst.close();
                src = s2;
                dst = d2;
            }
            c.ops().copy_(dst, src);
            return result;
        } catch (RuntimeException e) {
            result.close();
            throw e;
        } finally {
            src.close();
            dst.close();
        }
    }
}
