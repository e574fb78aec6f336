package dev.sipu.cpu.kernels;

import dev.sipu.api.DType;
import dev.sipu.api.Tensor;
import dev.sipu.cpu.gemm.Fp8Gemm;
import dev.sipu.cpu.simd.E4m3;
import dev.sipu.cpu.simd.Floats;
import dev.sipu.cpu.simd.Vec;
import dev.sipu.dispatch.Call;
import dev.sipu.dispatch.meta.LlmMeta;
import dev.sipu.dispatch.spi.Registrar;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.List;

import static dev.sipu.dispatch.DispatchKey.CPU;

/**
 * vLLM's per-token quantization and DeepSeek's block FP8 ops (OPS.md) with the C kernels'
 * arithmetic: amax folded with NaNs skipped, scales computed in fp32 with the same operations,
 * x / scale as a division, the saturating e4m3 conversion, so both devices agree bit for bit.
 */
public final class QuantKernels {
    private QuantKernels() {}

    private static final ValueLayout.OfFloat F32 = ValueLayout.JAVA_FLOAT_UNALIGNED;
    private static final ValueLayout.OfByte I8 = ValueLayout.JAVA_BYTE;

    public static void register(Registrar r) {
        r.registerVoid("_C::dynamic_per_token_scaled_fp8_quant", CPU, QuantKernels::perTokenFp8);
        r.registerVoid("_C::dynamic_scaled_int8_quant", CPU, QuantKernels::perTokenInt8);
        r.register("deepseek::act_quant", CPU, QuantKernels::actQuant);
        r.register("deepseek::weight_dequant", CPU, QuantKernels::weightDequant);
        r.register("deepseek::fp8_gemm", CPU, QuantKernels::fp8Gemm);
    }

    /** Per row: scale = max(min(amax, scale_ub) / 448, 1 / (448 * 512)); result = e4m3_sat(x / scale). */
    private static void perTokenFp8(Call c) {
        LlmMeta.PerToken rows = LlmMeta.perTokenQuant(c, DType.FLOAT8_E4M3FN);
        Tensor ubT = c.optTensor(3);
        float bound = ubT == null ? Float.POSITIVE_INFINITY : Floats.loadOne(ubT.dtype(), ubT.storage().memory(), ubT.byteOffset());
        perToken(c, rows, (row, h, out, at) -> {
            float amax = Vec.absMax(row, 0, h);
            if (!Float.isNaN(bound)) amax = Math.min(amax, bound);
            float s = Math.max(amax / 448f, 1f / (448f * 512f));
            Vec.divBy(row, s, row, h);
            E4m3.storeSaturating(row, 0, h, out, at);
            return s;
        });
    }

    /** Per row: scale = amax / 127; result = round-half-even(x / scale) clamped to int8 (0 for a zero row). */
    private static void perTokenInt8(Call c) {
        perToken(c, LlmMeta.perTokenQuant(c, DType.INT8), (row, h, out, at) -> {
            float s = Vec.absMax(row, 0, h) / 127f;
            Vec.divBy(row, s, row, h);
            for (int i = 0; i < h; i++) {
                float q = s > 0 ? (float) Math.rint(row[i]) : 0f;
                out.set(I8, at + i, (byte) (q > 127f ? 127 : q < -128f ? -128 : (int) q));
            }
            return s;
        });
    }

    private interface RowQuant {
        /** Quantizes row[0, h) (free to overwrite) into h bytes at {@code at}; returns the row's scale. */
        float apply(float[] row, int h, MemorySegment out, long at);
    }

    /** result and input [..., H] as [T, H] rows (each contiguous, evenly spaced), scale [T]: rows in parallel. */
    private static void perToken(Call c, LlmMeta.PerToken rows, RowQuant q) {
        Tensor out = c.tensor(0), x = c.tensor(1), scale = c.tensor(2);
        long tokens = rows.rows();
        int h = Rows.width(c, 1, rows.h());
        if (tokens == 0) return;
        DType t = x.dtype();
        long item = t.itemSize();
        MemorySegment xm = x.storage().memory(), om = out.storage().memory(), sm = scale.storage().memory();
        Rows.forEach(tokens, h, () -> {
            float[] row = new float[Vec.padded(h)];
            return r -> {
                Floats.load(t, xm, x.byteOffset() + r * rows.inputRowStride() * item, item, row, 0, h);
                float s = q.apply(row, h, om, out.byteOffset() + r * rows.resultRowStride());
                sm.set(F32, scale.byteOffset() + 4 * r, s);
            };
        });
    }

    /**
     * DeepSeek's act_quant: per block of block_size elements, s = max(amax, 1e-4) / 448 (with
     * "ue8m0" rounded up to a power of two as exp2(ceil(log2(s))) in fp32), y = e4m3_sat(x / s).
     */
    private static List<Tensor> actQuant(Call c) {
        LlmMeta.ActQuant shape = LlmMeta.actQuant(c);
        Tensor x = c.tensor(0);
        int block = Rows.width(c, 1, c.i64(1));
        long blocks = shape.k() / block;
        boolean ue8m0 = "ue8m0".equals(c.str(2));
        Tensor y = c.dispatcher().empty(shape.yShape(), DType.FLOAT8_E4M3FN, c.device());
        Tensor s = c.dispatcher().empty(shape.sShape(), DType.FLOAT32, c.device());
        try {
            DType t = x.dtype();
            long item = t.itemSize(), k = shape.k();
            MemorySegment xm = x.storage().memory(), ym = y.storage().memory(), sm = s.storage().memory();
            Rows.forEach(shape.rows(), k, () -> {
                float[] buf = new float[Vec.padded(block)];
                return r -> {
                    for (long b = 0; b < blocks; b++) {
                        long first = r * k + b * block;
                        Floats.load(t, xm, x.byteOffset() + first * item, item, buf, 0, block);
                        float sc = Math.max(Vec.absMax(buf, 0, block), 1e-4f) / 448f;
                        if (ue8m0) sc = powerOfTwoAbove(sc);
                        sm.set(F32, s.byteOffset() + 4 * (r * blocks + b), sc);
                        Vec.divBy(buf, sc, buf, block);
                        E4m3.storeSaturating(buf, 0, block, ym, y.byteOffset() + first);
                    }
                };
            });
            return List.of(y, s);
        } catch (RuntimeException e) {
            y.close();
            s.close();
            throw e;
        }
    }

    /**
     * {@code exp2f(ceilf(log2f(s)))} for a positive s: log2 rounded to fp32 first (as libm's log2f
     * and torch.log2 return it), so a value just above a power of two whose log2 rounds to the
     * integer keeps that power. log2 is evaluated in double as exponent + log2(mantissa), far more
     * precise than the fp32 rounding that follows.
     */
    static float powerOfTwoAbove(float s) {
        if (Float.isInfinite(s) || Float.isNaN(s)) return s;
        int e = Math.getExponent(s);
        double mantissa = s / Math.scalb(1.0, e);
        float log2 = (float) (e + Math.log(mantissa) / Math.log(2.0));
        return Math.scalb(1f, (int) Math.ceil(log2));
    }

    /** DeepSeek's weight_dequant: y[i, j] = bf16(e4m3(x[i, j]) * s[i / block, j / block]), partial edge blocks included. */
    private static Tensor weightDequant(Call c) {
        LlmMeta.weightDequant(c);
        Tensor x = c.tensor(0), s = c.tensor(1);
        long rows = x.size(0), block = c.i64(2);
        int cols = Rows.width(c, 0, x.size(1));
        Tensor y = c.dispatcher().empty(x.sizes(), DType.BFLOAT16, c.device());
        try {
            MemorySegment xm = x.storage().memory(), sm = s.storage().memory(), ym = y.storage().memory();
            Rows.forEach(rows, cols, () -> {
                float[] v = new float[Vec.padded(cols)], scale = new float[Vec.padded(cols)];
                return i -> {
                    long xAt = x.offset() + i * x.stride(0), sAt = s.offset() + i / block * s.stride(0);
                    for (int j = 0; j < cols; j++) {
                        v[j] = E4m3.decode(xm.get(I8, xAt + j * x.stride(1)));
                        scale[j] = sm.get(F32, 4 * (sAt + j / block * s.stride(1)));
                    }
                    Vec.mul(v, scale, v, cols);
                    Floats.store(v, 0, cols, DType.BFLOAT16, ym, y.byteOffset() + i * cols * 2L, 2);
                };
            });
            return y;
        } catch (RuntimeException e) {
            y.close();
            throw e;
        }
    }

    /** DeepSeek's fp8_gemm: out [..., N] bf16 = sum over 128-wide K blocks of (a_blk . b_blk) * a_s * b_s, in fp32. */
    private static Tensor fp8Gemm(Call c) {
        LlmMeta.Fp8Gemm g = LlmMeta.fp8Gemm(c);
        if (g.m() > Integer.MAX_VALUE || g.n() > Integer.MAX_VALUE || g.k() > Integer.MAX_VALUE - 128) {
            throw c.error(0, "a [" + g.m() + ", " + g.k() + "] x b [" + g.n() + ", " + g.k() + "] is too large for the CPU kernel");
        }
        Tensor out = c.dispatcher().empty(g.outShape(), DType.BFLOAT16, c.device());
        try {
            Fp8Gemm.multiply(new Fp8Gemm.Operands(c.tensor(0), c.tensor(1), c.tensor(2), c.tensor(3), out),
                    (int) g.m(), (int) g.n(), (int) g.k());
            return out;
        } catch (RuntimeException e) {
            out.close();
            throw e;
        }
    }
}
