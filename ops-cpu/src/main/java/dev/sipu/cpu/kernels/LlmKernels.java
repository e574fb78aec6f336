package dev.sipu.cpu.kernels;

import dev.sipu.api.Conversions;
import dev.sipu.api.DType;
import dev.sipu.api.Elements;
import dev.sipu.api.Tensor;
import dev.sipu.dispatch.DispatchKey;
import dev.sipu.dispatch.meta.NormMeta;
import dev.sipu.dispatch.spi.Registrar;

import java.lang.foreign.MemorySegment;

/** vLLM's fused ops on the CPU, with the rounding points of SEMANTICS.md §1 and §3. */
public final class LlmKernels {
    private LlmKernels() {}

    public static void register(Registrar r) {
        // rms_norm(result, input, weight, epsilon)
        r.register("_C::rms_norm", DispatchKey.CPU, c -> {
            long h = NormMeta.rmsNorm(c, 0, 1, 2);
            Tensor out = c.tensor(0), x = c.tensor(1), w = c.tensor(2);
            float eps = (float) c.f64(3);
            DType t = x.dtype();
            long rows = h == 0 ? 0 : x.numel() / h;
            MemorySegment mo = out.storage().memory(), mx = x.storage().memory();
            int item = t.itemSize();
            for (long r0 = 0; r0 < rows; r0++) {
                long xo = Elements.byteOffsetOf(x, r0 * h), oo = Elements.byteOffsetOf(out, r0 * h);
                float ss = 0;
                for (long i = 0; i < h; i++) {
                    float v = (float) Elements.getDouble(mx, xo + i * item, t);
                    ss += v * v;
                }
                float inv = (float) (1.0 / Math.sqrt(ss / h + eps));
                for (long i = 0; i < h; i++) {
                    float v = (float) Elements.getDouble(mx, xo + i * item, t);
                    float normed = round(t, v * inv);
                    Elements.putDouble(mo, oo + i * item, t, normed * (float) Elements.getDouble(w, i));
                }
            }
            return null;
        });
        // silu_and_mul(result, input)
        r.register("_C::silu_and_mul", DispatchKey.CPU, c -> {
            long d = NormMeta.siluAndMul(c, 0, 1);
            Tensor out = c.tensor(0), x = c.tensor(1);
            DType t = x.dtype();
            long rows = d == 0 ? 0 : out.numel() / d;
            MemorySegment mo = out.storage().memory(), mx = x.storage().memory();
            int item = t.itemSize();
            for (long r0 = 0; r0 < rows; r0++) {
                long xo = x.byteOffset() + r0 * 2 * d * item, oo = out.byteOffset() + r0 * d * item;
                for (long j = 0; j < d; j++) {
                    float a = (float) Elements.getDouble(mx, xo + j * item, t);
                    float b = (float) Elements.getDouble(mx, xo + (d + j) * item, t);
                    float s = round(t, (float) (a / (1.0 + Math.exp(-a))));
                    Elements.putDouble(mo, oo + j * item, t, s * b);
                }
            }
            return null;
        });
    }

    /** Rounds an fp32 value to dtype {@code t} and back (identity for float32). */
    static float round(DType t, float v) {
        return switch (t) {
            case BFLOAT16 -> Conversions.bf16ToFloat(Conversions.floatToBf16(v));
            case FLOAT16 -> Conversions.f16ToFloat(Conversions.floatToF16(v));
            default -> v;
        };
    }
}
