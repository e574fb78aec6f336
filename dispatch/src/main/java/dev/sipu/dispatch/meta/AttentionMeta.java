package dev.sipu.dispatch.meta;

import dev.sipu.api.CpuMemory;
import dev.sipu.api.DType;
import dev.sipu.api.OpNotImplementedException;
import dev.sipu.api.Tensor;
import dev.sipu.dispatch.Call;

import java.lang.foreign.ValueLayout;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * The three attention ops reduced to one packed form (SEMANTICS.md §11, §12), checked once for every
 * device: {@code _vllm_fa2_C::varlen_fwd} (packed or paged keys), {@code vllm::unified_attention}
 * (paged) and {@code flash_attn::_flash_attn_forward} (batched [B, L, H, D], packed here with
 * cu_seqlens of equal steps). A device kernel computes {@code out [Tq, Hq, Dv]} and, when asked,
 * {@code lse [Hq, Tq]} from a {@link Plan}; {@link #result} shapes what the op returns. The values of
 * cu_seqlens, seqused_k and block_table are checked by the kernels, which read them where they live.
 */
public final class AttentionMeta {
    private AttentionMeta() {}

    /** Causal sets the right window to 0; -1 means unbounded. */
    public static final class Plan implements AutoCloseable {
        public final Tensor out, lse, q, k, v, cuQ, cuK, seqused, blockTable;
        public final double scale, softcap;
        public final long windowLeft, windowRight;
        private final List<Tensor> owned;

        Plan(Tensor out, Tensor lse, Tensor q, Tensor k, Tensor v, Tensor cuQ, Tensor cuK, Tensor seqused, Tensor blockTable,
             double scale, long windowLeft, long windowRight, double softcap, List<Tensor> owned) {
            this.out = out;
            this.lse = lse;
            this.q = q;
            this.k = k;
            this.v = v;
            this.cuQ = cuQ;
            this.cuK = cuK;
            this.seqused = seqused;
            this.blockTable = blockTable;
            this.scale = scale;
            this.windowLeft = windowLeft;
            this.windowRight = windowRight;
            this.softcap = softcap;
            this.owned = owned;
        }

        public boolean paged() { return blockTable != null; }

        /** Keeps t alive past close (it is returned). */
        Tensor keep(Tensor t) {
            owned.remove(t);
            return t;
        }

        @Override
        public void close() {
            for (Tensor t : owned) t.close();
        }
    }

    public static Plan plan(Call c) {
        return switch (c.op()) {
            case "_vllm_fa2_C::varlen_fwd" -> varlen(c);
            case "vllm::unified_attention" -> unified(c);
            case "flash_attn::_flash_attn_forward" -> flash(c);
            default -> throw new IllegalArgumentException(c.op() + " is not an attention op");
        };
    }

    /** What the op returns once the kernel has filled the plan's out and lse. */
    public static Object result(Call c, Plan p) {
        return switch (c.op()) {
            case "_vllm_fa2_C::varlen_fwd" -> List.of(p.keep(p.out), p.keep(p.lse));
            case "vllm::unified_attention" -> null;
            default -> {
                // flash: out [B*L, Hq, Dv] -> [B, L, Hq, Dv]; lse [Hq, B*L] -> [B, Hq, L]
                long b = c.tensor(0).size(0), l = c.tensor(0).size(1), hq = p.out.size(1), dv = p.out.size(2);
                Tensor out = p.out.asStrided(new long[] {b, l, hq, dv}, new long[] {l * hq * dv, hq * dv, dv, 1}, p.out.offset());
                try (Tensor lseView = p.lse.asStrided(new long[] {b, hq, l}, new long[] {l, b * l, 1}, p.lse.offset())) {
                    yield List.of(out, c.ops().contiguousCopy(lseView));
                } catch (RuntimeException e) {
                    out.close();
                    throw e;
                }
            }
        };
    }

    // varlen_fwd(q, k, v, out?, cu_seqlens_q, cu_seqlens_k, seqused_k?, leftpad_k?, block_table?, alibi_slopes?,
    //   max_seqlen_q, max_seqlen_k, p_dropout, softmax_scale, zero_tensors, is_causal, wl, wr, softcap, return_softmax, num_splits, gen?)
    private static Plan varlen(Call c) {
        Tensor q = c.tensor(0), k = c.tensor(1), v = c.tensor(2), out = c.optTensor(3);
        // valid inputs without a kernel here: "not implemented" (a conformance case using them is skipped, never passed)
        if (c.f64(12) != 0) throw new OpNotImplementedException(c.op(), "with dropout (p_dropout must be 0)");
        if (c.arg(7) != null) throw new OpNotImplementedException(c.op(), "with leftpad_k");
        if (c.arg(9) != null) throw new OpNotImplementedException(c.op(), "with alibi_slopes");
        Tensor table = c.optTensor(8), used = c.optTensor(6);
        if (table != null && used == null) throw c.error(6, "is required with a block_table");
        return build(c, q, k, v, out, 3, c.tensor(4), table == null ? c.tensor(5) : null, used, table, c.f64(13),
                c.i64(16), c.bool(15) ? 0 : c.i64(17), c.f64(18), true, new ArrayList<>());
    }

    // unified_attention(q, k_cache, v_cache, out, cu_seqlens_q, max_seqlen_q, seqused_k, max_seqlen_k, softmax_scale,
    //   causal, window_size, block_table, softcap)
    private static Plan unified(Call c) {
        long[] window = c.ints(10);
        if (window == null || window.length != 2) throw c.error(10, "must be [left, right]");
        return build(c, c.tensor(0), c.tensor(1), c.tensor(2), c.tensor(3), 3, c.tensor(4), null, c.tensor(6), c.tensor(11),
                c.f64(8), window[0], c.bool(9) ? 0 : window[1], c.f64(12), false, new ArrayList<>());
    }

    // _flash_attn_forward(q, k, v, dropout_p, softmax_scale, causal, wl, wr, softcap, alibi_slopes, return_softmax)
    private static Plan flash(Call c) {
        Tensor q = c.tensor(0), k = c.tensor(1), v = c.tensor(2);
        if (c.f64(3) != 0) throw new OpNotImplementedException(c.op(), "with dropout (dropout_p must be 0)");
        if (c.arg(9) != null) throw new OpNotImplementedException(c.op(), "with alibi_slopes");
        for (int i = 0; i < 3; i++) {
            Tensor t = c.tensor(i);
            if (t.dim() != 4) throw c.error(i, "must be [B, L, H, D], got " + t.dim() + "-D");
        }
        long b = q.size(0), lq = q.size(1), lk = k.size(1);
        if (k.size(0) != b || v.size(0) != b || v.size(1) != lk) throw c.error(1, "batch or key lengths of q, k and v disagree");
        List<Tensor> owned = new ArrayList<>();
        try {
            Tensor qp = packed(c, q, owned), kp = packed(c, k, owned), vp = packed(c, v, owned);
            Tensor cuQ = steps(c, b, lq, owned), cuK = steps(c, b, lk, owned);
            return build(c, qp, kp, vp, null, 0, cuQ, cuK, null, null, c.f64(4), c.i64(6), c.bool(5) ? 0 : c.i64(7), c.f64(8),
                    true, owned);
        } catch (RuntimeException e) {
            for (Tensor t : owned) t.close();
            throw e;
        }
    }

    /** [B, L, H, D] as [B*L, H, D] (a view where possible). */
    private static Tensor packed(Call c, Tensor t, List<Tensor> owned) {
        Tensor r = c.ops().reshape(t, t.size(0) * t.size(1), t.size(2), t.size(3));
        owned.add(r);
        return r;
    }

    /** int32 [B + 1] = 0, L, 2L, ... on the call's device. */
    private static Tensor steps(Call c, long b, long l, List<Tensor> owned) {
        Tensor host = Tensor.adopt(CpuMemory.allocate((b + 1) * 4), DType.INT32, b + 1);
        try (host) {
            for (long i = 0; i <= b; i++) host.data().setAtIndex(ValueLayout.JAVA_INT, i, Math.toIntExact(i * l));
            Tensor r = c.dispatcher().to(host, c.device());
            owned.add(r);
            return r;
        }
    }

    private static Plan build(Call c, Tensor q, Tensor k, Tensor v, Tensor out, int outArg, Tensor cuQ, Tensor cuK, Tensor used,
                              Tensor table, double scale, long wl, long wr, double softcap, boolean withLse, List<Tensor> owned) {
        try {
            DType t = q.dtype();
            if (t != DType.FLOAT32 && t != DType.FLOAT16 && t != DType.BFLOAT16) throw c.error(0, "must be float32, float16 or bfloat16, got " + t);
            if (k.dtype() != t || v.dtype() != t) throw c.error(1, "q, k and v must share a dtype, got " + t + ", " + k.dtype() + ", " + v.dtype());
            if (q.dim() != 3) throw c.error(0, "must be [total_q, Hq, D], got " + Arrays.toString(q.sizes()));
            int kd = table != null ? 4 : 3;
            if (k.dim() != kd || v.dim() != kd) {
                throw c.error(1, table != null ? "k and v caches must be [blocks, page, Hk, D]" : "k and v must be [total_k, Hk, D]");
            }
            long hq = q.size(1), d = q.size(2), hk = k.size(kd - 2), dv = v.size(kd - 1);
            if (k.size(kd - 1) != d) throw c.error(1, "head dim " + k.size(kd - 1) + " differs from q's " + d);
            if (v.size(kd - 2) != hk || !Arrays.equals(Arrays.copyOf(k.sizes(), kd - 2), Arrays.copyOf(v.sizes(), kd - 2))) {
                throw c.error(2, "must match k's blocks/tokens and heads");
            }
            if (hk == 0 || hq % hk != 0) throw c.error(1, "query heads " + hq + " must be a multiple of key heads " + hk);
            if (scale != scale) throw c.error(0, "softmax_scale is NaN");
            long[] outShape = {q.size(0), hq, dv};
            if (out == null) {
                out = c.dispatcher().empty(outShape, t, c.device());
                owned.add(out);
            } else if (out.dtype() != t || !Arrays.equals(out.sizes(), outShape)) {
                throw c.error(outArg, "must be " + t + Arrays.toString(outShape) + ", got " + out.dtype() + Arrays.toString(out.sizes()));
            }
            Tensor lse = null;
            if (withLse) {
                lse = c.dispatcher().empty(new long[] {hq, q.size(0)}, DType.FLOAT32, c.device());
                owned.add(lse);
            }
            for (Tensor ix : new Tensor[] {cuQ, cuK, used, table}) {
                if (ix != null && ix.dtype() != DType.INT32) throw c.error(4, "cu_seqlens, seqused_k and block_table must be int32, got " + ix.dtype());
                if (ix != null && !ix.device().equals(c.device())) throw c.error(4, "index tensors must be on " + c.device());
            }
            return new Plan(out, lse, q, k, v, cuQ, cuK, used, table, scale, wl, wr, softcap, owned);
        } catch (RuntimeException e) {
            for (Tensor o : owned) o.close();
            throw e;
        }
    }
}
