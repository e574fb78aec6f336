package dev.sipu.cpu.kernels;

import dev.sipu.api.Tensor;
import dev.sipu.cpu.loops.Copy;
import dev.sipu.dispatch.meta.ElementwiseMeta;
import dev.sipu.dispatch.spi.Registrar;

import static dev.sipu.dispatch.DispatchKey.CPU;

/** copy_(self, src): src broadcast into self, converted to self's dtype; returns self. */
public final class CopyKernels {
    private CopyKernels() {}

    public static void register(Registrar r) {
        r.register("aten::copy_", CPU, c -> {
            try (ElementwiseMeta m = ElementwiseMeta.copy(c, 0, 1)) {
                if (!m.inputs().isEmpty()) copy(m.output(), m.input(0));
            }
            return c.tensor(0);
        });
    }

    /** An aliased source (other than the very same view, which the meta made a no-op) is read from a copy first. */
    private static void copy(Tensor dst, Tensor src) {
        if (!src.sharesStorageWith(dst)) {
            Copy.copy(dst, src);
            return;
        }
        try (Tensor tmp = Copy.contiguous(src)) {
            Copy.copy(dst, tmp);
        }
    }
}
