package dev.sipu.cpu.kernels;

import dev.sipu.api.Tensor;
import dev.sipu.cpu.gemm.Fp32Gemm;
import dev.sipu.cpu.gemm.Matrix;
import dev.sipu.cpu.gemm.ScalarGemm;
import dev.sipu.dispatch.Call;
import dev.sipu.dispatch.meta.MatmulMeta;
import dev.sipu.dispatch.spi.Registrar;

import static dev.sipu.dispatch.DispatchKey.CPU;

/** mm and bmm: fp32, fp16 and bf16 through the blocked Vector API GEMM, fp64 and integers through the scalar one. */
public final class MatmulKernels {
    private MatmulKernels() {}

    public static void register(Registrar r) {
        r.register("aten::mm", CPU, MatmulKernels::matmul);
        r.register("aten::bmm", CPU, MatmulKernels::matmul);
        r.register("aten::mm.dtype", CPU, MatmulKernels::matmul);
    }

    private static Tensor matmul(Call c) {
        Tensor out = MatmulMeta.output(c);
        try {
            Tensor a = c.tensor(0);
            Matrix ma = Matrix.of(a), mb = Matrix.of(c.tensor(1)), mc = Matrix.of(out);
            int batches = a.dim() == 3 ? Math.toIntExact(a.size(0)) : 1;
            switch (a.dtype()) {
                case FLOAT32, FLOAT16, BFLOAT16 -> Fp32Gemm.multiply(ma, mb, mc, batches);
                default -> ScalarGemm.multiply(ma, mb, mc, batches);
            }
            return out;
        } catch (RuntimeException e) {
            out.close();
            throw e;
        }
    }
}
