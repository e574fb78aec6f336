package dev.sipu.model;

import dev.sipu.api.DType;
import dev.sipu.api.Scalar;
import dev.sipu.api.Tensor;
import dev.sipu.dispatch.Dispatcher;

import java.util.List;

/**
 * Multi-head latent attention in vLLM's absorbed form, one path for prefill and decode: queries are
 * projected (q_a -> q_a_layernorm -> q_b, or q_proj), keys and values live only as the normed latent
 * plus the rotated rope key in the {@link KvCache}; kv_b_proj's key half is multiplied into the query
 * and its value half applied after attention, so {@code vllm::unified_attention} attends directly over
 * the paged latent cache (one KV head of width kv_lora_rank + rope_dim, values its first kv_lora_rank).
 * Decode is the same call with one query row; the bottom-right causal mask does the rest.
 *
 * <p>The absorbed products, the latent cache and the attention itself are kept in fp32 in every mode:
 * absorption adds two roundings that the unabsorbed form does not have, and in bf16 they cost more
 * accuracy than the bf16 check allows. Projections and everything outside attention use the mode's dtype.
 */
final class MlaAttention {
    private final ModelConfig cfg;
    private final Dispatcher d;
    private final Linear qA, qB, kvA, kvB, o;
    private final Tensor qNorm, kvNorm, wUk, wUvT, kvScale;

    MlaAttention(ModelConfig cfg, Weights w, String p) {
        this.cfg = cfg;
        this.d = w.dispatcher();
        boolean lora = cfg.qLoraRank() != null;
        this.qA = lora ? Linear.load(w, p + "q_a_proj") : null;
        this.qB = Linear.load(w, p + (lora ? "q_b_proj" : "q_proj"));
        this.qNorm = lora ? w.get(p + "q_a_layernorm.weight") : null;
        this.kvA = Linear.load(w, p + "kv_a_proj_with_mqa");
        this.kvNorm = w.get(p + "kv_a_layernorm.weight");
        this.o = Linear.load(w, p + "o_proj");
        // kv_b_proj [H * (nope + v), rank] split per head into W_UK [H, nope, rank] and W_UV^T [H, rank, v]
        int h = cfg.heads(), nope = cfg.nopeDim(), v = cfg.vDim(), rank = cfg.kvLoraRank();
        this.kvB = Linear.load(w, p + "kv_b_proj");
        Tensor dense = kvB.dense(w);
        try (Tensor heads = d.ops().view(dense, h, nope + v, rank);
             Tensor uk = d.ops().narrow(heads, 1, 0, nope);
             Tensor uv = d.ops().narrow(heads, 1, nope, v);
             Tensor uvT = d.ops().transpose(uv, 1, 2)) {
            this.wUk = w.own(d.ops().toDtype(uk, DType.FLOAT32));
            this.wUvT = w.own(d.ops().toDtype(uvT, DType.FLOAT32));
        }
        this.kvScale = w.own(d.ops().full(new long[] {1}, Scalar.of(1.0), DType.FLOAT32, w.device()));
    }

    /** x [T, hidden] at the cache's next positions -> [T, hidden]; stores the tokens' latents in layer's cache. */
    Tensor forward(Tensor x, Step s, KvCache cache, int layer, Rope rope) {
        int t = (int) x.size(0), h = cfg.heads(), nope = cfg.nopeDim(), rd = cfg.ropeDim(), rank = cfg.kvLoraRank(), qk = cfg.qkDim();
        try (Tensor q = query(x); Tensor ckv = kvA.apply(x)) {
            // views: q [T, H, nope | rope], ckv [T, rank | rope]
            Tensor qPe = q.asStrided(new long[] {t, h, rd}, new long[] {(long) h * qk, qk, 1}, q.offset() + nope);
            Tensor kPe = ckv.asStrided(new long[] {t, 1, rd}, new long[] {rank + rd, rd, 1}, ckv.offset() + rank);
            try (qPe; kPe;
                 Tensor latent = ckv.asStrided(new long[] {t, rank}, new long[] {rank + rd, 1}, ckv.offset());
                 Tensor kPe2 = ckv.asStrided(new long[] {t, rd}, new long[] {rank + rd, 1}, ckv.offset() + rank);
                 Tensor latentIn = d.ops().contiguousCopy(latent);
                 Tensor latentN = rmsNorm(d, latentIn, kvNorm, cfg.eps())) {
                rope.apply(s.positions(), qPe, kPe);
                try (Tensor latent32 = cachedLatent(latentN); Tensor pe32 = d.ops().toDtype(kPe2, DType.FLOAT32)) {
                    d.call("_C_cache_ops::concat_and_cache_mla", latent32, pe32, cache.latent(layer), s.slots(), "auto", kvScale);
                }
            }
            try (Tensor q32 = d.ops().toDtype(q, DType.FLOAT32); Tensor qAbs = absorbedQuery(q32, t);
                 Tensor outLatent = attend(qAbs, s, cache, layer, rope)) {
                return output(outLatent, t, x.dtype());
            }
        }
    }

    /**
     * The latent as kv_b_proj consumes it, in fp32. A float8 kv_b_proj quantizes its input (the normed
     * latent) like every FP8 projection; absorbed, that input is what keys and values are made of, so
     * the cache holds it quantized, which reproduces the FP8 projection of the latent (with fp32
     * output) up to summation order.
     */
    private Tensor cachedLatent(Tensor latentN) {
        return kvB.fp8() ? kvB.quantized(latentN) : d.ops().toDtype(latentN, DType.FLOAT32);
    }

    private Tensor query(Tensor x) {
        if (qA == null) return qB.apply(x);
        try (Tensor a = qA.apply(x); Tensor an = rmsNorm(d, a, qNorm, cfg.eps())) {
            return qB.apply(an);
        }
    }

    /** [q_nope W_UK | q_pe] per head: [T, H, rank + rope]. */
    private Tensor absorbedQuery(Tensor q, int t) {
        int h = cfg.heads(), nope = cfg.nopeDim(), rd = cfg.ropeDim(), qk = cfg.qkDim();
        try (Tensor qNope = q.asStrided(new long[] {h, t, nope}, new long[] {qk, (long) h * qk, 1}, q.offset());
             Tensor qPe = q.asStrided(new long[] {t, h, rd}, new long[] {(long) h * qk, qk, 1}, q.offset() + nope);
             Tensor lat = d.ops().bmm(qNope, wUk);                       // [H, T, rank]
             Tensor latT = d.ops().permute(lat, 1, 0, 2)) {              // [T, H, rank]
            return d.ops().cat(List.of(latT, qPe), 2);
        }
    }

    private Tensor attend(Tensor qAbs, Step s, KvCache cache, int layer, Rope rope) {
        int h = cfg.heads(), rank = cfg.kvLoraRank(), width = rank + cfg.ropeDim();
        Tensor c = cache.latent(layer);
        long blocks = c.size(0), page = c.size(1);
        Tensor out = d.ops().empty(new long[] {qAbs.size(0), h, rank}, qAbs.dtype(), qAbs.device());
        try (Tensor k = c.asStrided(new long[] {blocks, page, 1, width}, new long[] {page * width, width, width, 1}, c.offset());
             Tensor v = c.asStrided(new long[] {blocks, page, 1, rank}, new long[] {page * width, width, width, 1}, c.offset())) {
            d.call("vllm::unified_attention", qAbs, k, v, out, s.cuQ(), qAbs.size(0), s.seqUsed(), (long) s.keys(),
                    rope.softmaxScale(), true, new long[] {-1, -1}, cache.blockTable(), 0.0);
            return out;
        } catch (RuntimeException e) {
            out.close();
            throw e;
        }
    }

    /** Per head out_latent W_UV^T, heads flattened, then o_proj. */
    private Tensor output(Tensor outLatent, int t, DType dtype) {
        int h = cfg.heads(), v = cfg.vDim();
        try (Tensor perHead = d.ops().permute(outLatent, 1, 0, 2);     // [H, T, rank]
             Tensor vh = d.ops().bmm(perHead, wUvT);                    // [H, T, v]
             Tensor tv = d.ops().permute(vh, 1, 0, 2);                  // [T, H, v]
             Tensor flat = d.ops().reshape(tv, t, (long) h * v); Tensor in = d.ops().toDtype(flat, dtype)) {
            return o.apply(in);
        }
    }

    static Tensor rmsNorm(Dispatcher d, Tensor x, Tensor weight, double eps) {
        Tensor out = d.ops().empty(x.sizes(), x.dtype(), x.device());
        d.call("_C::rms_norm", out, x, weight, eps);
        return out;
    }
}
