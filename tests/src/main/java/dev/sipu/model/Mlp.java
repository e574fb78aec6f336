package dev.sipu.model;

import dev.sipu.api.Tensor;
import dev.sipu.dispatch.Dispatcher;

import java.util.List;

/** DeepSeek's gated MLP: down(silu(gate(x)) * up(x)) with {@code _C::silu_and_mul} (dense layers, shared experts). */
final class Mlp {
    private final Dispatcher d;
    private final Linear gate, up, down;

    Mlp(Weights w, String p) {
        this.d = w.dispatcher();
        this.gate = Linear.load(w, p + "gate_proj");
        this.up = Linear.load(w, p + "up_proj");
        this.down = Linear.load(w, p + "down_proj");
    }

    Linear gate() { return gate; }
    Linear up() { return up; }
    Linear down() { return down; }

    Tensor forward(Tensor x) {
        try (Tensor g = gate.apply(x); Tensor u = up.apply(x); Tensor gu = d.ops().cat(List.of(g, u), 1);
             Tensor h = d.ops().empty(g.sizes(), g.dtype(), g.device())) {
            d.call("_C::silu_and_mul", h, gu);
            return down.apply(h);
        }
    }
}
