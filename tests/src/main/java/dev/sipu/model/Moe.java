package dev.sipu.model;

import dev.sipu.api.DType;
import dev.sipu.api.Device;
import dev.sipu.api.Elements;
import dev.sipu.api.Tensor;
import dev.sipu.dispatch.Dispatcher;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * A DeepSeek-V3 MoE layer: router logits in fp32, {@code _moe_C::grouped_topk} (sigmoid scores plus
 * the correction bias for choosing, group top-k, expert top-k, renormalized and scaled weights), the
 * routed experts and the shared experts. Routed experts run fused through
 * {@code vllm::inplace_fused_experts}; with FP8 weights they run expert by expert (index_select,
 * FP8 linears, weighted {@code _index_put_impl_} accumulation) through the same DeepSeek act_quant +
 * fp8_gemm linears as the dense layers. The fused op's FP8 path (vLLM's per-token-group quantization,
 * fp32 between the GEMMs) has not been measured against the model's expected outputs.
 */
final class Moe {
    private final ModelConfig cfg;
    private final Dispatcher d;
    private final Tensor router, bias;
    private final Tensor w13, w2;          // stacked [E, 2I, H] and [E, H, I], dense weights only
    private final List<Mlp> experts;       // per expert, FP8 weights only
    private final Mlp shared;

    Moe(ModelConfig cfg, Weights w, String p) {
        this.cfg = cfg;
        this.d = w.dispatcher();
        this.router = w.get(p + "gate.weight", DType.FLOAT32);
        this.bias = w.get(p + "gate.e_score_correction_bias", DType.FLOAT32);
        this.shared = cfg.sharedExperts() > 0 ? new Mlp(w, p + "shared_experts.") : null;
        List<Mlp> all = new ArrayList<>();
        for (int e = 0; e < cfg.routedExperts(); e++) all.add(new Mlp(w, p + "experts." + e + "."));
        if (all.get(0).gate().fp8()) {
            this.experts = all;
            this.w13 = null;
            this.w2 = null;
        } else {
            List<Tensor> gateUp = new ArrayList<>(), down = new ArrayList<>();
            for (Mlp m : all) {
                gateUp.add(d.ops().unsqueeze(m.gate().weight(), 0));
                gateUp.add(d.ops().unsqueeze(m.up().weight(), 0));
                down.add(d.ops().unsqueeze(m.down().weight(), 0));
            }
            try (Tensor stacked = d.ops().cat(gateUp, 0)) {
                // [2E, I, H] -> [E, 2I, H]: each expert's gate rows then its up rows
                this.w13 = w.own(d.ops().reshape(stacked, cfg.routedExperts(), 2L * cfg.moeIntermediate(), cfg.hidden()));
            }
            this.w2 = w.own(d.ops().cat(down, 0));
            gateUp.forEach(Tensor::close);
            down.forEach(Tensor::close);
            this.experts = null;
        }
    }

    @SuppressWarnings("unchecked")
    Tensor forward(Tensor x) {
        List<Tensor> routing;
        try (Tensor x32 = d.ops().toDtype(x, DType.FLOAT32); Tensor logits = d.ops().linear(x32, router, null)) {
            routing = (List<Tensor>) d.call("_moe_C::grouped_topk", logits, (long) cfg.groups(), (long) cfg.topkGroup(),
                    (long) cfg.topk(), cfg.normTopk(), cfg.routedScaling(), bias, 1L);
        }
        try (Tensor weights = routing.get(0); Tensor ids = routing.get(1);
             Tensor routed = experts == null ? fused(x, weights, ids) : perExpert(x, weights, ids)) {
            if (shared == null) return d.ops().clone(routed);
            try (Tensor s = shared.forward(x)) {
                return d.ops().add(routed, s);
            }
        }
    }

    private Tensor fused(Tensor x, Tensor weights, Tensor ids) {
        Tensor out = d.ops().clone(x);
        d.call("vllm::inplace_fused_experts", new Object[] {out, w13, w2, weights, ids}, Map.of("activation", "silu"));
        return out;
    }

    /** Expert by expert: the routing is read on the host to pick each expert's rows. */
    private Tensor perExpert(Tensor x, Tensor weights, Tensor ids) {
        int t = (int) x.size(0), k = cfg.topk();
        Tensor out = d.ops().zeros(x.sizes(), x.dtype(), x.device());
        try (Tensor hostIds = d.to(ids, Device.CPU); Tensor flatW = d.ops().reshape(weights, -1)) {
            for (int e = 0; e < experts.size(); e++) {
                List<Integer> rows = new ArrayList<>(), slots = new ArrayList<>();
                for (int i = 0; i < t * k; i++) {
                    if (Elements.getLong(hostIds, i) == e) {
                        rows.add(i / k);
                        slots.add(i);
                    }
                }
                if (rows.isEmpty()) continue;
                try (Tensor r = longs(rows, x); Tensor sl = longs(slots, x);
                     Tensor xe = (Tensor) d.call("aten::index_select", x, 0L, r);
                     Tensor ye = experts.get(e).forward(xe);
                     Tensor we = (Tensor) d.call("aten::index_select", flatW, 0L, sl);
                     Tensor we2 = d.ops().unsqueeze(we, 1);
                     Tensor weighted = d.ops().mul(ye, we2);
                     Tensor cast = d.ops().toDtype(weighted, x.dtype())) {
                    d.call("aten::_index_put_impl_", out, List.of(r), cast, true, false);
                }
            }
            return out;
        } catch (RuntimeException ex) {
            out.close();
            throw ex;
        }
    }

    private Tensor longs(List<Integer> v, Tensor like) {
        Tensor host = d.ops().empty(new long[] {v.size()}, DType.INT64, Device.CPU);
        try (host) {
            for (int i = 0; i < v.size(); i++) Elements.putLong(host.data(), i * 8L, DType.INT64, v.get(i));
            return d.to(host, like.device());
        }
    }
}
