package dev.sipu.cpu.kernels;

import dev.sipu.api.DType;
import dev.sipu.api.Tensor;
import dev.sipu.cpu.simd.Floats;
import dev.sipu.cpu.simd.Vec;
import dev.sipu.dispatch.Call;
import dev.sipu.dispatch.meta.NormMeta;
import dev.sipu.dispatch.spi.Registrar;

import java.lang.foreign.MemorySegment;

import static dev.sipu.dispatch.DispatchKey.CPU;

/**
 * vLLM's row-wise ops (SEMANTICS.md §1, §3): each row is loaded into fp32 lanes, computed with
 * {@link Vec} primitives, rounded at exactly the points the reference rounds, and stored.
 * Rows are split across threads.
 */
public final class LlmKernels {
    private LlmKernels() {}

    public static void register(Registrar r) {
        r.registerVoid("_C::rms_norm", CPU, LlmKernels::rmsNorm);
        r.registerVoid("_C::silu_and_mul", CPU, LlmKernels::siluAndMul);
    }

    /** Per row: inv = 1/sqrt(mean(x^2) + eps) in fp32; out = round(round(x * inv) * w). */
    private static void rmsNorm(Call c) {
        int h = Rows.width(c, 1, NormMeta.rmsNorm(c, 0, 1, 2));
        Tensor out = c.tensor(0), x = c.tensor(1), w = c.tensor(2);
        long rows = NormMeta.rows(x);
        if (rows == 0 || h == 0) return;
        DType t = x.dtype();
        long item = t.itemSize();
        float eps = (float) c.f64(3);
        float[] weight = new float[Vec.padded(h)];
        Floats.load(t, w.storage().memory(), w.byteOffset(), item, weight, 0, h);
        MemorySegment xm = x.storage().memory(), om = out.storage().memory();
        Rows.forEach(rows, h, () -> {
            float[] row = new float[Vec.padded(h)];
            return r -> {
                Floats.load(t, xm, NormMeta.rowOffset(x, r) * item, item, row, 0, h);
                float inv = 1f / (float) Math.sqrt(Vec.sumOfSquares(row, h) / h + eps);
                Vec.scale(row, inv, row, h);
                Floats.round(row, 0, h, t);
                Vec.mul(row, weight, row, h);
                Floats.store(row, 0, h, t, om, NormMeta.rowOffset(out, r) * item, item);
            };
        });
    }

    /** Per row: out = round(round(silu(a)) * b) with a, b the two halves of the input row. */
    private static void siluAndMul(Call c) {
        int d = Rows.width(c, 1, NormMeta.siluAndMul(c, 0, 1));
        Tensor out = c.tensor(0), x = c.tensor(1);
        long rows = NormMeta.rows(x);
        if (rows == 0 || d == 0) return;
        DType t = x.dtype();
        long item = t.itemSize();
        MemorySegment xm = x.storage().memory(), om = out.storage().memory();
        Rows.forEach(rows, 2L * d, () -> {
            float[] a = new float[Vec.padded(d)], b = new float[Vec.padded(d)];
            return r -> {
                long at = NormMeta.rowOffset(x, r) * item;
                Floats.load(t, xm, at, item, a, 0, d);
                Floats.load(t, xm, at + d * item, item, b, 0, d);
                Vec.silu(a, a, d);
                Floats.round(a, 0, d, t);
                Vec.mul(a, b, a, d);
                Floats.store(a, 0, d, t, om, NormMeta.rowOffset(out, r) * item, item);
            };
        });
    }
}
