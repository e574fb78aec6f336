package dev.sipu.sipu.kernels;

import dev.sipu.api.Tensor;
import dev.sipu.dispatch.Call;
import dev.sipu.dispatch.meta.AttentionMeta;
import dev.sipu.dispatch.spi.Registrar;
import dev.sipu.ffm.gen.SipuKernels;
import dev.sipu.sipu.Native;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;

import static dev.sipu.dispatch.DispatchKey.SIPU;
import static dev.sipu.sipu.kernels.ElementwiseKernels.desc;

/** varlen_fwd, unified_attention and _flash_attn_forward on SIPU: one plan, one C attention core. */
final class AttentionKernels {
    private AttentionKernels() {}

    static void register(Registrar r) {
        for (String op : new String[] {"_vllm_fa2_C::varlen_fwd", "vllm::unified_attention", "flash_attn::_flash_attn_forward"}) {
            r.register(op, SIPU, AttentionKernels::attention);
        }
    }

    private static Object attention(Call c) {
        try (AttentionMeta.Plan p = AttentionMeta.plan(c); Arena a = Arena.ofConfined()) {
            Native.check(c.op(), SipuKernels.sipu_attention(desc(a, c, p.out, "out"), opt(a, c, p.lse, "softmax_lse"),
                    desc(a, c, p.q, "q"), desc(a, c, p.k, "k"), desc(a, c, p.v, "v"), desc(a, c, p.cuQ, "cu_seqlens_q"),
                    opt(a, c, p.cuK, "cu_seqlens_k"), opt(a, c, p.seqused, "seqused_k"), opt(a, c, p.blockTable, "block_table"),
                    p.scale, p.windowLeft, p.windowRight, p.softcap));
            return AttentionMeta.result(c, p);
        }
    }

    private static MemorySegment opt(Arena a, Call c, Tensor t, String name) {
        return t == null ? MemorySegment.NULL : desc(a, c, t, name);
    }
}
