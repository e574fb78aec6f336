package dev.sipu.sipu.kernels;

import dev.sipu.api.Tensor;
import dev.sipu.dispatch.Call;
import dev.sipu.dispatch.meta.MatmulMeta;
import dev.sipu.dispatch.spi.Registrar;
import dev.sipu.ffm.gen.SipuKernels;
import dev.sipu.sipu.Native;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;

import static dev.sipu.dispatch.DispatchKey.SIPU;

/** mm and bmm on SIPU: any strides go straight to the packed C GEMM. */
final class MatmulKernels {
    private MatmulKernels() {}

    static void register(Registrar r) {
        r.register("aten::mm", SIPU, c -> matmul(c, MatmulMeta.mm(c, c.tensor(0), c.tensor(1))));
        r.register("aten::bmm", SIPU, c -> matmul(c, MatmulMeta.bmm(c, c.tensor(0), c.tensor(1))));
        r.register("aten::mm.dtype", SIPU, c -> matmul(c, MatmulMeta.mm(c, c.tensor(0), c.tensor(1))));
    }

    private static Tensor matmul(Call c, long[] shape) {
        Tensor a = c.tensor(0), b = c.tensor(1);
        if (a.dtype().isBool()) throw c.error(0, "matmul is not implemented for bool");
        Tensor out = c.dispatcher().empty(shape, MatmulMeta.outDtype(c), c.device());
        try (Arena arena = Arena.ofConfined()) {
            Native.check(c.op(), SipuKernels.sipu_matmul(Native.desc(arena, c.op(), "out", out, shape, out.strides()),
                    Native.desc(arena, c, 0, a), Native.desc(arena, c, 1, b), MemorySegment.NULL));
            return out;
        } catch (RuntimeException e) {
            out.close();
            throw e;
        }
    }
}
