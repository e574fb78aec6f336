package dev.sipu.dispatch.meta;

import dev.sipu.api.Tensor;

import java.util.Arrays;

/**
 * Memory overlap between tensors, as PyTorch's {@code MemOverlap.cpp} judges it: exact answers for
 * non-overlapping dense tensors, {@link Status#TOO_HARD} otherwise (the op then proceeds, and a
 * device kernel that reads an aliased input must make its own copy first).
 */
public final class Overlap {
    private Overlap() {}

    public enum Status { NO, FULL, PARTIAL, TOO_HARD }

    /** True when some element of {@code t} is stored at the same address as another (a broadcast view). */
    public static boolean hasInternalOverlap(Tensor t) {
        if (isNonOverlappingAndDense(t)) return false;
        long[] sizes = t.sizes(), strides = t.strides();
        for (int i = 0; i < sizes.length; i++) {
            if (strides[i] == 0 && sizes[i] > 1) return true;
        }
        return false;
    }

    /** How the memory of {@code a} and {@code b} overlaps. */
    public static Status status(Tensor a, Tensor b) {
        if (a == b) return Status.FULL;
        if (a.numel() == 0 || b.numel() == 0 || !a.sharesStorageWith(b)) return Status.NO;
        if (!isNonOverlappingAndDense(a) || !isNonOverlappingAndDense(b)) return Status.TOO_HARD;
        long aBegin = a.byteOffset(), aEnd = aBegin + a.numel() * a.dtype().itemSize();
        long bBegin = b.byteOffset(), bEnd = bBegin + b.numel() * b.dtype().itemSize();
        if (aBegin == bBegin && aEnd == bEnd) {
            return Arrays.equals(a.strides(), b.strides()) ? Status.FULL : Status.PARTIAL;
        }
        return aBegin < bEnd && bBegin < aEnd ? Status.PARTIAL : Status.NO;
    }

    /** Same storage, offset, sizes, strides and dtype: one view of the same elements. */
    public static boolean isSameView(Tensor a, Tensor b) {
        return a.sharesStorageWith(b) && a.offset() == b.offset() && a.dtype() == b.dtype()
                && Arrays.equals(a.sizes(), b.sizes()) && Arrays.equals(a.strides(), b.strides());
    }

    /** The elements fill a block of memory exactly once in some order of dimensions (a permuted contiguous tensor). */
    public static boolean isNonOverlappingAndDense(Tensor t) {
        long[] sizes = t.sizes(), strides = t.strides();
        int n = sizes.length;
        Integer[] perm = new Integer[n];
        for (int i = 0; i < n; i++) perm[i] = i;
        // Dimensions of size 0 or 1 may carry any stride: sorted last, they end the chain.
        Arrays.sort(perm, (x, y) -> sizes[x] < 2 || sizes[y] < 2
                ? Boolean.compare(sizes[x] < 2, sizes[y] < 2)
                : Long.compare(strides[x], strides[y]));
        long expected = 1;
        for (int i : perm) {
            if (sizes[i] < 2) return true;
            if (strides[i] != expected) return false;
            expected *= sizes[i];
        }
        return true;
    }
}
