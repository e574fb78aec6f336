package dev.sipu.api;

import java.lang.foreign.MemorySegment;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * A block of device memory shared by a tensor and its views, reference counted: each tensor holds
 * one reference and the memory goes back to its owner (an allocator, a file mapping) when the last
 * one is released.
 *
 * <p>{@link #memory()} of a SIPU storage is a device address: only SIPU kernels may dereference it.
 */
public final class Storage {

    /** Gives the memory back; called exactly once. */
    @FunctionalInterface
    public interface Releaser {
        void release(MemorySegment memory);
    }

    private final Device device;
    private final MemorySegment memory;
    private final Releaser releaser;
    private final AtomicInteger refs = new AtomicInteger(1);

    public Storage(Device device, MemorySegment memory, Releaser releaser) {
        this.device = device;
        this.memory = memory;
        this.releaser = releaser;
    }

    public Device device() { return device; }

    public MemorySegment memory() {
        if (refs.get() <= 0) throw new IllegalStateException("storage on " + device + " was already released");
        return memory;
    }

    public long byteSize() { return memory.byteSize(); }

    public boolean isReleased() { return refs.get() <= 0; }

    void retain() {
        for (;;) {
            int r = refs.get();
            if (r <= 0) throw new IllegalStateException("storage on " + device + " was already released");
            if (refs.compareAndSet(r, r + 1)) return;
        }
    }

    void release() {
        int r = refs.decrementAndGet();
        if (r == 0) releaser.release(memory);
        else if (r < 0) throw new IllegalStateException("storage released more often than retained");
    }

    /** Same storage: views of one another. */
    public boolean sameAs(Storage other) { return this == other; }
}
