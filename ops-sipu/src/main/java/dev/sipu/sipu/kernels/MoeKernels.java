package dev.sipu.sipu.kernels;

import dev.sipu.api.DType;
import dev.sipu.api.Tensor;
import dev.sipu.dispatch.meta.ExpertsMeta;
import dev.sipu.dispatch.meta.LlmMeta;
import dev.sipu.dispatch.spi.Registrar;
import dev.sipu.ffm.gen.SipuKernels;
import dev.sipu.sipu.Native;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.List;

import static dev.sipu.dispatch.DispatchKey.SIPU;

/** MoE experts, routing and reduction on SIPU, and the MLA cache write. */
final class MoeKernels {
    private MoeKernels() {}

    static void register(Registrar r) {
        r.register("vllm::inplace_fused_experts", SIPU, c -> {
            ExpertsMeta.Plan p = ExpertsMeta.of(c);
            if (p.hidden().numel() == 0) return null;
            try (Arena a = Arena.ofConfined()) {
                Native.check(c.op(), SipuKernels.sipu_fused_experts(Native.desc(a, c, 0, p.hidden()), Native.desc(a, c, 1, p.w1()),
                        Native.desc(a, c, 2, p.w2()), Native.desc(a, c, 3, p.topkWeights()), Native.desc(a, c, 4, p.topkIds()),
                        p.expertMap() == null ? MemorySegment.NULL : Native.desc(a, c, 13, p.expertMap()),
                        p.fp8() ? Native.desc(a, c, 14, p.w1Scale()) : MemorySegment.NULL,
                        p.fp8() ? Native.desc(a, c, 15, p.w2Scale()) : MemorySegment.NULL, p.onInput() ? 1 : 0));
            }
            return null;
        });
        r.register("_moe_C::moe_sum", SIPU, c -> {
            LlmMeta.moeSum(c);
            if (c.tensor(1).numel() == 0) return null;
            try (Arena a = Arena.ofConfined()) {
                Native.check(c.op(), SipuKernels.sipu_moe_sum(Native.desc(a, c, 0, c.tensor(0)), Native.desc(a, c, 1, c.tensor(1))));
            }
            return null;
        });
        r.register("_moe_C::topk_softmax", SIPU, c -> {
            LlmMeta.topkSoftmax(c);
            if (c.tensor(0).numel() == 0) return null;
            try (Arena a = Arena.ofConfined()) {
                Native.check(c.op(), SipuKernels.sipu_topk_softmax(Native.desc(a, c, 0, c.tensor(0)), Native.desc(a, c, 1, c.tensor(1)),
                        Native.desc(a, c, 2, c.tensor(2)), Native.desc(a, c, 3, c.tensor(3))));
            }
            return null;
        });
        // grouped_topk(scores, n_group, topk_group, topk, renormalize, routed_scaling_factor, bias, scoring_func)
        r.register("_moe_C::grouped_topk", SIPU, c -> {
            long[] shape = LlmMeta.groupedTopk(c);
            Tensor w = c.dispatcher().empty(shape, DType.FLOAT32, c.device());
            Tensor ids = c.dispatcher().empty(shape, DType.INT32, c.device());
            try (Arena a = Arena.ofConfined()) {
                if (shape[0] > 0) {
                    Native.check(c.op(), SipuKernels.sipu_grouped_topk(Native.desc(a, c.op(), "topk_weights", w, shape, w.strides()),
                            Native.desc(a, c.op(), "topk_ids", ids, shape, ids.strides()), Native.desc(a, c, 0, c.tensor(0)),
                            Native.desc(a, c, 6, c.tensor(6)), c.i64(1), c.i64(2), c.bool(4) ? 1 : 0, c.f64(5), (int) c.i64(7)));
                }
                return List.of(w, ids);
            } catch (RuntimeException e) {
                w.close();
                ids.close();
                throw e;
            }
        });
        r.register("_moe_C::moe_align_block_size", SIPU, c -> {
            LlmMeta.moeAlign(c);
            try (Arena a = Arena.ofConfined()) {
                Native.check(c.op(), SipuKernels.sipu_moe_align_block_size(Native.desc(a, c, 0, c.tensor(0)), c.i64(1), c.i64(2),
                        Native.desc(a, c, 3, c.tensor(3)), Native.desc(a, c, 4, c.tensor(4)), Native.desc(a, c, 5, c.tensor(5))));
            }
            return null;
        });
        // concat_and_cache_mla(kv_c, k_pe, kv_cache!, slot_mapping, kv_cache_dtype, scale)
        r.register("_C_cache_ops::concat_and_cache_mla", SIPU, c -> {
            boolean fp8 = LlmMeta.concatAndCacheMla(c);
            try (Arena a = Arena.ofConfined()) {
                Native.check(c.op(), SipuKernels.sipu_concat_and_cache_mla(Native.desc(a, c, 0, c.tensor(0)), Native.desc(a, c, 1, c.tensor(1)),
                        Native.desc(a, c, 2, c.tensor(2)), Native.desc(a, c, 3, c.tensor(3)), fp8 ? 1 : 0, Native.desc(a, c, 5, c.tensor(5))));
            }
            return null;
        });
    }
}
