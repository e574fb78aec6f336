package dev.sipu.cpu.kernels;

import dev.sipu.api.Tensor;
import dev.sipu.dispatch.DispatchKey;
import dev.sipu.dispatch.meta.Broadcast;
import dev.sipu.dispatch.spi.Registrar;

import java.util.Arrays;

/** copy_: broadcast src into self, converting the dtype as PyTorch does. */
public final class CopyKernels {
    private CopyKernels() {}

    public static void register(Registrar r) {
        r.register("aten::copy_", DispatchKey.CPU, c -> {
            Tensor self = c.tensor(0), src = c.tensor(1);
            long[] strides = dev.sipu.api.Shapes.expandStrides(src.sizes(), src.strides(), self.sizes());
            if (strides == null) {
                throw c.error(1, "the size of src " + Arrays.toString(src.sizes()) + " does not broadcast to self "
                        + Arrays.toString(self.sizes()));
            }
            if (self.numel() == 0) return self;
            if (self.sharesStorageWith(src)) {
                // An overlapping source is read completely before self is written.
                try (Tensor tmp = c.ops().contiguousCopy(src); Tensor e = Broadcast.expand(tmp, self.sizes())) {
                    Loops.copy(self, e);
                }
            } else {
                try (Tensor e = Broadcast.expand(src, self.sizes())) {
                    Loops.copy(self, e);
                }
            }
            return self;
        });
    }
}
