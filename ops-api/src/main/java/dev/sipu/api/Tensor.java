package dev.sipu.api;

import java.lang.foreign.MemorySegment;
import java.lang.ref.Cleaner;
import java.util.Arrays;

/**
 * A strided view of a {@link Storage}: sizes, strides (in elements), an element offset and a dtype.
 * Views share the storage and keep it alive. {@link #close()} releases this tensor's reference
 * deterministically; a tensor that is never closed is released when it becomes unreachable.
 *
 * <p>Tensors are immutable in their metadata and safe to share between threads; the data they view
 * is not synchronized.
 */
public final class Tensor implements AutoCloseable {

    private static final Cleaner CLEANER = Cleaner.create();

    private final Storage storage;
    private final long offset;
    private final long[] sizes;
    private final long[] strides;
    private final DType dtype;
    private final long numel;
    private final Cleaner.Cleanable cleanable;

    private Tensor(Storage storage, DType dtype, long[] sizes, long[] strides, long offset) {
        this.storage = storage;
        this.dtype = dtype;
        this.sizes = sizes;
        this.strides = strides;
        this.offset = offset;
        this.numel = Shapes.numel(sizes);
        this.cleanable = CLEANER.register(this, new Release(storage));
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
        checkFits(storage, dtype, sizes, strides, offset);
        storage.retain();
        return new Tensor(storage, dtype, sizes.clone(), strides.clone(), offset);
    }

    /** The same memory reinterpreted with another dtype of the same item size (bitcast). */
    public Tensor viewAs(DType other) {
        if (other.itemSize() != dtype.itemSize()) {
            throw new IllegalArgumentException("cannot bitcast " + dtype + " to " + other + ": item sizes differ");
        }
        checkFits(storage, other, sizes, strides, offset);
        storage.retain();
        return new Tensor(storage, other, sizes.clone(), strides.clone(), offset);
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

    public Storage storage() { return storage; }
    public Device device() { return storage.device(); }
    public DType dtype() { return dtype; }
    public int dim() { return sizes.length; }
    public long numel() { return numel; }
    public long offset() { return offset; }
    public long[] sizes() { return sizes.clone(); }
    public long[] strides() { return strides.clone(); }

    public long size(int d) { return sizes[Shapes.wrapDim("size", "dim", d, sizes.length)]; }

    public long stride(int d) { return strides[Shapes.wrapDim("stride", "dim", d, sizes.length)]; }

    /** Row-major contiguous (size-1 dims may have any stride, as in PyTorch). */
    public boolean isContiguous() {
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
    public long byteOffset() { return offset * dtype.itemSize(); }

    /** The memory of this tensor's elements (from the first element to the end of the storage). */
    public MemorySegment data() {
        return storage.memory().asSlice(byteOffset());
    }

    /** True when both share one storage. */
    public boolean sharesStorageWith(Tensor other) { return storage == other.storage; }

    public boolean isClosed() { return storage.isReleased(); }

    @Override
    public void close() { cleanable.clean(); }

    @Override
    public String toString() {
        return "Tensor(" + dtype + Arrays.toString(sizes) + ", stride=" + Arrays.toString(strides)
                + (offset != 0 ? ", offset=" + offset : "") + ", " + device() + ")";
    }

    private static final class Release implements Runnable {
        private final Storage storage;
        Release(Storage storage) { this.storage = storage; }
        @Override public void run() { storage.release(); }
    }
}
