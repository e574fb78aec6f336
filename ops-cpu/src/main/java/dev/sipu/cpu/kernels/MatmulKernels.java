package dev.sipu.cpu.kernels;

import dev.sipu.api.DType;
import dev.sipu.api.Elements;
import dev.sipu.api.Tensor;
import dev.sipu.dispatch.Call;
import dev.sipu.dispatch.DispatchKey;
import dev.sipu.dispatch.meta.MatmulMeta;
import dev.sipu.dispatch.spi.Registrar;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorSpecies;

import java.lang.foreign.MemorySegment;

/**
 * mm and bmm on the CPU: operands packed into row-major float arrays (narrow floats widened once),
 * an i-k-j loop with the j dimension in Vector API lanes and fp32 accumulation, one rounding on store.
 * float64 accumulates in double and integers exactly in long.
 */
public final class MatmulKernels {
    private MatmulKernels() {}

    private static final VectorSpecies<Float> F = FloatVector.SPECIES_PREFERRED;

    public static void register(Registrar r) {
        r.register("aten::mm", DispatchKey.CPU, c -> {
            long[] shape = MatmulMeta.mm(c, c.tensor(0), c.tensor(1));
            Tensor out = c.dispatcher().empty(shape, c.tensor(0).dtype(), c.device());
            gemm(c, out, c.tensor(0), c.tensor(1));
            return out;
        });
        r.register("aten::bmm", DispatchKey.CPU, c -> {
            Tensor a = c.tensor(0), b = c.tensor(1);
            long[] shape = MatmulMeta.bmm(c, a, b);
            Tensor out = c.dispatcher().empty(shape, a.dtype(), c.device());
            for (long i = 0; i < shape[0]; i++) {
                try (Tensor ai = c.ops().select(a, 0, i); Tensor bi = c.ops().select(b, 0, i); Tensor oi = c.ops().select(out, 0, i)) {
                    gemm(c, oi, ai, bi);
                }
            }
            return out;
        });
    }

    /** out[M, N] = a[M, K] @ b[K, N], any strides. */
    static void gemm(Call c, Tensor out, Tensor a, Tensor b) {
        int m = Math.toIntExact(a.size(0)), k = Math.toIntExact(a.size(1)), n = Math.toIntExact(b.size(1));
        DType t = out.dtype();
        if (t.isBool()) throw c.error(0, "mm is not implemented for bool");
        MemorySegment mo = out.storage().memory();
        if (t.isFloatingPoint() && t != DType.FLOAT64) {
            float[] pa = packFloat(a), pb = packFloat(b);
            float[] pc = new float[m * n];
            for (int i = 0; i < m; i++) {
                for (int kk = 0; kk < k; kk++) {
                    float aik = pa[i * k + kk];
                    if (aik == 0f) continue;
                    int j = 0, row = i * n, brow = kk * n;
                    FloatVector va = FloatVector.broadcast(F, aik);
                    for (int bound = F.loopBound(n); j < bound; j += F.length()) {
                        FloatVector acc = FloatVector.fromArray(F, pc, row + j);
                        va.fma(FloatVector.fromArray(F, pb, brow + j), acc).intoArray(pc, row + j);
                    }
                    for (; j < n; j++) pc[row + j] += aik * pb[brow + j];
                }
            }
            for (int i = 0; i < m * n; i++) Elements.putDouble(mo, Elements.byteOffsetOf(out, i), t, pc[i]);
        } else if (t == DType.FLOAT64) {
            double[] pc = new double[m * n];
            for (int i = 0; i < m; i++)
                for (int kk = 0; kk < k; kk++) {
                    double aik = Elements.getDouble(a, (long) i * k + kk);
                    for (int j = 0; j < n; j++) pc[i * n + j] += aik * Elements.getDouble(b, (long) kk * n + j);
                }
            for (int i = 0; i < m * n; i++) Elements.putDouble(mo, Elements.byteOffsetOf(out, i), t, pc[i]);
        } else {
            long[] pc = new long[m * n];
            for (int i = 0; i < m; i++)
                for (int kk = 0; kk < k; kk++) {
                    long aik = Elements.getLong(a, (long) i * k + kk);
                    for (int j = 0; j < n; j++) pc[i * n + j] += aik * Elements.getLong(b, (long) kk * n + j);
                }
            for (int i = 0; i < m * n; i++) Elements.putLong(mo, Elements.byteOffsetOf(out, i), t, pc[i]);
        }
    }

    private static float[] packFloat(Tensor t) {
        float[] p = new float[Math.toIntExact(t.numel())];
        for (int i = 0; i < p.length; i++) p[i] = (float) Elements.getDouble(t, i);
        return p;
    }
}
