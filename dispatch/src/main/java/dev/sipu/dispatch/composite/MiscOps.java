package dev.sipu.dispatch.composite;

import dev.sipu.api.DType;
import dev.sipu.api.Device;
import dev.sipu.api.Elements;
import dev.sipu.api.Scalar;
import dev.sipu.api.Tensor;
import dev.sipu.api.TypePromotion;
import dev.sipu.dispatch.Call;
import dev.sipu.dispatch.DispatchKey;
import dev.sipu.dispatch.spi.Registrar;

import java.util.Map;

/** The remaining PyTorch composites: result_type, out-of-place masked_fill, softmax wrappers, embedding. */
final class MiscOps {
    private MiscOps() {}

    static void register(Registrar r) {
        r.register("aten::result_type.Scalar", DispatchKey.COMPOSITE,
                c -> TypePromotion.state().tensor(c.tensor(0)).scalar(c.scalar(1)).result());
        r.register("aten::result_type.Scalar_Tensor", DispatchKey.COMPOSITE,
                c -> TypePromotion.state().scalar(c.scalar(0)).tensor(c.tensor(1)).result());
        r.register("aten::masked_fill.Scalar", DispatchKey.COMPOSITE, c -> {
            Tensor out = c.ops().clone(c.tensor(0));
            try {
                c.dispatcher().call("aten::masked_fill_.Scalar", out, c.tensor(1), c.scalar(2));
                return out;
            } catch (RuntimeException e) {
                out.close();
                throw e;
            }
        });
        r.register("aten::softmax.int", DispatchKey.COMPOSITE, c -> softmax(c, "aten::_softmax"));
        r.register("aten::log_softmax.int", DispatchKey.COMPOSITE, c -> softmax(c, "aten::_log_softmax"));
        r.register("aten::embedding", DispatchKey.COMPOSITE, MiscOps::embedding);
        r.register("aten::_local_scalar_dense", DispatchKey.COMPOSITE, MiscOps::localScalarDense);
    }

    /** _local_scalar_dense(self): the one element as a Java Scalar (long for integers, boolean, double), read on the host. */
    private static Scalar localScalarDense(Call c) {
        Tensor self = c.tensor(0);
        if (self.numel() != 1) {
            throw c.error(0, "a Tensor with " + self.numel() + " elements cannot be converted to Scalar");
        }
        try (Tensor host = c.dispatcher().to(self, Device.CPU)) {
            DType t = host.dtype();
            if (t.isBool()) return Scalar.of(Elements.getLong(host, 0) != 0);
            if (t.isFloatingPoint()) return Scalar.of(Elements.getDouble(host, 0));
            return Scalar.of(Elements.getLong(host, 0));
        }
    }

    /** softmax.int(self, dim, dtype): cast first when a dtype is given, then the kernel without half_to_float. */
    private static Tensor softmax(Call c, String kernel) {
        Tensor self = c.tensor(0);
        DType dtype = c.dtype(2);
        if (dtype == null || dtype == self.dtype()) {
            return (Tensor) c.dispatcher().call(kernel, self, c.i64(1), false);
        }
        try (Tensor cast = c.ops().toDtype(self, dtype)) {
            return (Tensor) c.dispatcher().call(kernel, cast, c.i64(1), false);
        }
    }

    /** embedding(weight, indices, ...) = index_select(weight, 0, indices.flatten()).view(indices.shape + [D]). */
    private static Tensor embedding(Call c) {
        Tensor weight = c.tensor(0), indices = c.tensor(1);
        if (weight.dim() != 2) throw c.error(0, "'weight' must be 2-D");
        if (indices.dtype() != DType.INT64 && indices.dtype() != DType.INT32) {
            throw c.error(1, "expected scalar type Long or Int for indices, but got " + indices.dtype());
        }
        long[] outShape = java.util.Arrays.copyOf(indices.sizes(), indices.dim() + 1);
        outShape[indices.dim()] = weight.size(1);
        try (Tensor flat = c.ops().reshape(indices, -1);
             Tensor rows = (Tensor) c.dispatcher().call("aten::index_select", new Object[] {weight, 0L, flat}, Map.of())) {
            return c.ops().reshape(rows, outShape);
        }
    }
}
