package dev.sipu.model;

import dev.sipu.api.Tensor;

/** The per-forward metadata of one sequence: positions, cache slots and the attention's lengths. */
record Step(Tensor positions, Tensor slots, Tensor cuQ, Tensor seqUsed, int keys) implements AutoCloseable {
    @Override
    public void close() {
        positions.close();
        slots.close();
        cuQ.close();
        seqUsed.close();
    }
}
