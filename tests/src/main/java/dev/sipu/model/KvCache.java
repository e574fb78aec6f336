package dev.sipu.model;

import dev.sipu.api.CpuMemory;
import dev.sipu.api.DType;
import dev.sipu.api.Device;
import dev.sipu.api.Tensor;
import dev.sipu.dispatch.Dispatcher;

import java.lang.foreign.ValueLayout;

/**
 * MLA's latent cache, as vLLM keeps it: per layer [blocks, 16, kv_lora_rank + rope_dim] holding the
 * normed latent and the rotated rope key of each token (written by
 * {@code _C_cache_ops::concat_and_cache_mla}), one sequence whose blocks are listed in a block table.
 */
public final class KvCache implements AutoCloseable {
    public static final int PAGE = 16;

    private final Dispatcher d;
    private final Device device;
    private final Tensor[] latent;
    private final Tensor blockTable;
    private final int capacity;
    private int length;

    public KvCache(ModelConfig cfg, int capacity, Dispatcher d, Device device, DType dtype) {
        this.d = d;
        this.device = device;
        int blocks = (capacity + PAGE - 1) / PAGE;
        this.capacity = blocks * PAGE;
        this.latent = new Tensor[cfg.layers()];
        for (int l = 0; l < latent.length; l++) {
            latent[l] = d.ops().zeros(new long[] {blocks, PAGE, cfg.kvLoraRank() + cfg.ropeDim()}, dtype, device);
        }
        this.blockTable = ints(d, device, blocks, i -> i, 1, blocks); // the sequence's blocks, in order
    }

    public int length() { return length; }
    public int capacity() { return capacity; }
    public Tensor latent(int layer) { return latent[layer]; }
    public Tensor blockTable() { return blockTable; }

    /** Slots of tokens [length, length + n): with the blocks in order, a token's slot is its position. */
    public Tensor slots(int n) {
        if (length + n > capacity) throw new IllegalStateException("the cache holds " + capacity + " tokens, " + (length + n) + " asked");
        return ints(d, device, n, i -> length + i, n);
    }

    /** Marks n more tokens as written (after every layer has stored them). */
    public void advance(int n) { length += n; }

    /** Forgets the tokens from {@code n} on; the next forward overwrites their slots (a benchmark decodes one position over and over). */
    public void truncate(int n) {
        if (n < 0 || n > length) throw new IllegalArgumentException("cannot truncate " + length + " tokens to " + n);
        length = n;
    }

    /** An int32 tensor of the given shape with element i = f(i), on the device. */
    static Tensor ints(Dispatcher d, Device device, int n, java.util.function.IntUnaryOperator f, long... shape) {
        Tensor host = Tensor.adopt(CpuMemory.allocate(n * 4L), DType.INT32, shape);
        try (host) {
            for (int i = 0; i < n; i++) host.data().setAtIndex(ValueLayout.JAVA_INT, i, f.applyAsInt(i));
            return d.to(host, device);
        }
    }

    @Override
    public void close() {
        for (Tensor t : latent) t.close();
        blockTable.close();
    }
}
