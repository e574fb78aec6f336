package dev.sipu.api;

import java.lang.foreign.MemorySegment;
import java.lang.ref.Cleaner;
import java.util.Arrays;

/**
 * A strided view of a {@link Storage}: sizes, strides (in elements), an element offset and a dtype.
 * Views share the storage and keep it alive. {@link #close()} releases this tensor's reference
 * deterministically; a tensor that is never closed is released when it becomes unreachable.
 *
 * <p>The metadata is one immutable snapshot, safe to share between threads; only {@code aten::resize_}
 * replaces it ({@link #resize}), as PyTorch's resize_ mutates its tensor. The data a tensor views is
 * not synchronized.
 */
public final class Tensor implements AutoCloseable {

    private static final Cleaner CLEANER = Cleaner.create();

    /** Everything but the dtype, replaced as a whole by {@link #resize}. */
    private record Meta(Storage storage, long offset, long[] sizes, long[] strides, long numel) {}

    private volatile Meta meta;
    private final DType dtype;
    private final Release release;
    private final Cleaner.Cleanable cleanable;

    private Tensor(Storage storage, DType dtype, long[] sizes, long[] strides, long offset) {
        this.dtype = dtype;
        this.meta = new Meta(storage, offset, sizes, strides, Shapes.numel(sizes));
        this.release = new Release(storage);
        this.cleanable = CLEANER.register(this, release);
    }

    /** Takes over the caller's reference to a freshly made storage. */
    public static Tensor adopt(Storage storage, DType dtype, long[] sizes, long[] strides, long offset) {
        checkFits(storage, dtype, sizes, strides, offset);
        return new Tensor(storage, dtype, sizes.clone(), strides.clone(), offset);
    }

    /** A contiguous tensor that takes over the caller's reference to {@code storage}. */
    public static Tensor adopt(Storage storage, DType dtype, long... sizes) {
        return adopt(storage, dtype, sizes, Shapes.contiguousStrides(sizes), 0);
    }

    /** A new tensor over {@code storage} that holds its own reference to it (the caller keeps theirs). */
    public static Tensor viewOf(Storage storage, DType dtype, long[] sizes, long[] strides, long offset) {
        checkFits(storage, dtype, sizes, strides, offset);
        storage.retain();
        return new Tensor(storage, dtype, sizes.clone(), strides.clone(), offset);
    }

    /** A new view of this tensor's storage (the view holds its own reference). */
    public Tensor asStrided(long[] sizes, long[] strides, long offset) {
        Storage storage = meta.storage;
        checkFits(storage, dtype, sizes, strides, offset);
        storage.retain();
        return new Tensor(storage, dtype, sizes.clone(), strides.clone(), offset);
    }

    /**
     * {@code aten::resize_}: this tensor becomes contiguous with {@code sizes}, at its offset on its
     * own storage (which must hold the new extent), or at offset 0 on the storage of {@code donor}
     * when given: the tensor then takes its own reference to that storage and releases its old one
     * (views of the old storage keep it).
     */
    public synchronized void resize(long[] sizes, Tensor donor) {
        Meta m = meta;
        if (m.storage.isReleased()) throw new IllegalStateException("tensor was closed");
        long[] strides = Shapes.contiguousStrides(sizes);
        Storage target = donor != null ? donor.storage() : m.storage;
        long offset = donor != null ? 0 : m.offset;
        checkFits(target, dtype, sizes, strides, offset);
        if (donor != null) {
            target.retain();
            release.swap(target);
        }
        meta = new Meta(target, offset, sizes.clone(), strides, Shapes.numel(sizes));
    }

    /** The same memory reinterpreted with another dtype of the same item size (bitcast). */
    public Tensor viewAs(DType other) {
        if (other.itemSize() != dtype.itemSize()) {
            throw new IllegalArgumentException("cannot bitcast " + dtype + " to " + other + ": item sizes differ");
        }
        Meta m = meta;
        checkFits(m.storage, other, m.sizes, m.strides, m.offset);
        m.storage.retain();
        return new Tensor(m.storage, other, m.sizes.clone(), m.strides.clone(), m.offset);
    }

    private static void checkFits(Storage storage, DType dtype, long[] sizes, long[] strides, long offset) {
        if (sizes.length != strides.length) {
            throw new IllegalArgumentException("sizes " + Arrays.toString(sizes) + " and strides "
                    + Arrays.toString(strides) + " differ in length");
        }
        if (offset < 0) throw new IllegalArgumentException("negative storage offset " + offset);
        long n = Shapes.numel(sizes);
        if (n == 0) return;
        long last = offset;
        for (int i = 0; i < sizes.length; i++) {
            if (strides[i] < 0) throw new IllegalArgumentException("negative stride in " + Arrays.toString(strides));
            try {
                last = Math.addExact(last, Math.multiplyExact(sizes[i] - 1, strides[i]));
            } catch (ArithmeticException e) {
                throw new IllegalArgumentException("view extent overflows int64");
            }
        }
        long capacity = storage.byteSize() / dtype.itemSize();
        if (last >= capacity) {
            throw new IllegalArgumentException("view of size " + Arrays.toString(sizes) + ", stride "
                    + Arrays.toString(strides) + ", offset " + offset + " needs " + (last + 1)
                    + " elements but the storage holds " + capacity);
        }
    }

    public Storage storage() { return meta.storage; }
    public Device device() { return meta.storage.device(); }
    public DType dtype() { return dtype; }
    public int dim() { return meta.sizes.length; }
    public long numel() { return meta.numel; }
    public long offset() { return meta.offset; }
    public long[] sizes() { return meta.sizes.clone(); }
    public long[] strides() { return meta.strides.clone(); }

    public long size(int d) {
        long[] sizes = meta.sizes;
        return sizes[Shapes.wrapDim("size", "dim", d, sizes.length)];
    }

    public long stride(int d) {
        long[] strides = meta.strides;
        return strides[Shapes.wrapDim("stride", "dim", d, strides.length)];
    }

    /** Row-major contiguous (size-1 dims may have any stride, as in PyTorch). */
    public boolean isContiguous() {
        long[] sizes = meta.sizes, strides = meta.strides;
        long expected = 1;
        for (int i = sizes.length - 1; i >= 0; i--) {
            if (sizes[i] == 1) continue;
            if (sizes[i] == 0) return true;
            if (strides[i] != expected) return false;
            expected *= sizes[i];
        }
        return true;
    }

    /** The byte address of element [0, ..., 0] within {@link Storage#memory()}. */
    public long byteOffset() { return meta.offset * dtype.itemSize(); }

    /** The memory of this tensor's elements (from the first element to the end of the storage). */
    public MemorySegment data() {
        Meta m = meta;
        return m.storage.memory().asSlice(m.offset * dtype.itemSize());
    }

    /** True when both share one storage. */
    public boolean sharesStorageWith(Tensor other) { return meta.storage == other.meta.storage; }

    public boolean isClosed() { return meta.storage.isReleased(); }

    @Override
    public void close() { cleanable.clean(); }

    @Override
    public String toString() {
        Meta m = meta;
        return "Tensor(" + dtype + Arrays.toString(m.sizes) + ", stride=" + Arrays.toString(m.strides)
                + (m.offset != 0 ? ", offset=" + m.offset : "") + ", " + device() + ")";
    }

    /** The Cleaner's action: releases the storage the tensor holds at that time (resize_ may swap it). */
    private static final class Release implements Runnable {
        private Storage storage;
        private boolean done;

        Release(Storage storage) { this.storage = storage; }

        synchronized void swap(Storage replacement) {
            Storage old = storage;
            storage = replacement;
            old.release();
        }

        @Override
        public synchronized void run() {
            done = true;
            storage.release();
        }
    }
}
