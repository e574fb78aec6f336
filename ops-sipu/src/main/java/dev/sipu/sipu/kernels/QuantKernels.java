package dev.sipu.sipu.kernels;

import dev.sipu.api.DType;
import dev.sipu.api.Tensor;
import dev.sipu.dispatch.Call;
import dev.sipu.dispatch.meta.LlmMeta;
import dev.sipu.dispatch.spi.Registrar;
import dev.sipu.ffm.gen.SipuKernels;
import dev.sipu.sipu.Native;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.List;

import static dev.sipu.dispatch.DispatchKey.SIPU;

/** vLLM's per-token quantization and DeepSeek's block FP8 ops on SIPU. */
final class QuantKernels {
    private QuantKernels() {}

    static void register(Registrar r) {
        r.register("_C::dynamic_per_token_scaled_fp8_quant", SIPU, c -> {
            LlmMeta.PerToken p = LlmMeta.perTokenQuant(c, DType.FLOAT8_E4M3FN);
            try (Arena a = Arena.ofConfined()) {
                MemorySegment ub = c.optTensor(3) == null ? MemorySegment.NULL : Native.desc(a, c, 3, c.tensor(3));
                Native.check(c.op(), SipuKernels.sipu_per_token_fp8_quant(rows(a, c, 0, p.rows(), p.h(), p.resultRowStride()),
                        rows(a, c, 1, p.rows(), p.h(), p.inputRowStride()), Native.desc(a, c, 2, c.tensor(2)), ub));
            }
            return null;
        });
        r.register("_C::dynamic_scaled_int8_quant", SIPU, c -> {
            LlmMeta.PerToken p = LlmMeta.perTokenQuant(c, DType.INT8);
            try (Arena a = Arena.ofConfined()) {
                Native.check(c.op(), SipuKernels.sipu_per_token_int8_quant(rows(a, c, 0, p.rows(), p.h(), p.resultRowStride()),
                        rows(a, c, 1, p.rows(), p.h(), p.inputRowStride()), Native.desc(a, c, 2, c.tensor(2))));
            }
            return null;
        });
        r.register("deepseek::act_quant", SIPU, QuantKernels::actQuant);
        r.register("deepseek::weight_dequant", SIPU, c -> {
            LlmMeta.weightDequant(c);
            Tensor x = c.tensor(0);
            Tensor y = c.dispatcher().empty(x.sizes(), DType.BFLOAT16, c.device());
            try (Arena a = Arena.ofConfined()) {
                Native.check(c.op(), SipuKernels.sipu_weight_dequant(Native.desc(a, c.op(), "y", y, y.sizes(), y.strides()),
                        Native.desc(a, c, 0, x), Native.desc(a, c, 1, c.tensor(1)), c.i64(2)));
                return y;
            } catch (RuntimeException e) {
                y.close();
                throw e;
            }
        });
        r.register("deepseek::fp8_gemm", SIPU, c -> {
            LlmMeta.Fp8Gemm g = LlmMeta.fp8Gemm(c);
            long kb = Math.ceilDiv(g.k(), 128);
            Tensor out = c.dispatcher().empty(g.outShape(), DType.BFLOAT16, c.device());
            try (Arena a = Arena.ofConfined()) {
                Native.check(c.op(), SipuKernels.sipu_fp8_gemm(
                        Native.desc(a, c.op(), "out", out, new long[] {g.m(), g.n()}, new long[] {g.n(), 1}),
                        Native.desc(a, c.op(), "a", c.tensor(0), new long[] {g.m(), g.k()}, new long[] {g.k(), 1}),
                        Native.desc(a, c.op(), "a_s", c.tensor(1), new long[] {g.m(), kb}, new long[] {kb, 1}),
                        Native.desc(a, c, 2, c.tensor(2)), Native.desc(a, c, 3, c.tensor(3))));
                return out;
            } catch (RuntimeException e) {
                out.close();
                throw e;
            }
        });
    }

    /** Argument {@code arg} [..., H] as its [rows, H] rows (the C kernels take 2-D row-major operands). */
    private static MemorySegment rows(Arena a, Call c, int arg, long rows, long h, long rowStride) {
        return Native.desc(a, c.op(), c.name(arg), c.tensor(arg), new long[] {rows, h}, new long[] {rowStride, 1});
    }

    /** act_quant(x [..., K], block_size, scale_fmt) -> (y e4m3 [..., K], s float32 [..., K / block]). */
    private static List<Tensor> actQuant(Call c) {
        LlmMeta.ActQuant q = LlmMeta.actQuant(c);
        long block = c.i64(1), nb = q.k() / block;
        Tensor y = c.dispatcher().empty(q.yShape(), DType.FLOAT8_E4M3FN, c.device());
        Tensor s = c.dispatcher().empty(q.sShape(), DType.FLOAT32, c.device());
        try (Arena a = Arena.ofConfined()) {
            long[] rows = {q.rows(), q.k()}, rowStrides = {q.k(), 1};
            Native.check(c.op(), SipuKernels.sipu_act_quant(
                    Native.desc(a, c.op(), "y", y, rows, rowStrides),
                    Native.desc(a, c.op(), "s", s, new long[] {q.rows(), nb}, new long[] {nb, 1}),
                    Native.desc(a, c.op(), "x", c.tensor(0), rows, rowStrides), block, "ue8m0".equals(c.str(2)) ? 1 : 0));
            return List.of(y, s);
        } catch (RuntimeException e) {
            y.close();
            s.close();
            throw e;
        }
    }
}
