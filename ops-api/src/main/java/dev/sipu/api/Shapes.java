package dev.sipu.api;

import java.util.Arrays;

/** Shape arithmetic shared by every device: contiguous strides, broadcasting, dim wrapping. */
public final class Shapes {
    private Shapes() {}

    public static long numel(long[] sizes) {
        long n = 1;
        for (long s : sizes) {
            if (s < 0) throw new IllegalArgumentException("negative size " + s + " in " + Arrays.toString(sizes));
            try {
                n = Math.multiplyExact(n, s);
            } catch (ArithmeticException e) {
                throw new IllegalArgumentException("numel of " + Arrays.toString(sizes) + " overflows int64");
            }
        }
        return n;
    }

    public static long[] contiguousStrides(long[] sizes) {
        long[] strides = new long[sizes.length];
        long s = 1;
        for (int i = sizes.length - 1; i >= 0; i--) {
            strides[i] = s;
            s *= Math.max(sizes[i], 1);
        }
        return strides;
    }

    /** Wraps a possibly negative dim into [0, rank); rank 0 accepts -1 and 0 as PyTorch does. */
    public static int wrapDim(String op, String arg, long dim, int rank) {
        int r = Math.max(rank, 1);
        if (dim < -r || dim >= r) {
            throw new OpArgumentException(op, arg, "dimension out of range (expected to be in range of ["
                    + (-r) + ", " + (r - 1) + "], but got " + dim + ")");
        }
        return (int) (dim < 0 ? dim + r : dim);
    }

    /** The broadcast shape of two shapes, or null when they do not broadcast. */
    public static long[] broadcast(long[] a, long[] b) {
        int n = Math.max(a.length, b.length);
        long[] out = new long[n];
        for (int i = 0; i < n; i++) {
            long x = i < n - a.length ? 1 : a[i - (n - a.length)];
            long y = i < n - b.length ? 1 : b[i - (n - b.length)];
            if (x == y || y == 1) out[i] = x;
            else if (x == 1) out[i] = y;
            else return null;
        }
        return out;
    }

    /** Strides that view a tensor of {@code sizes}/{@code strides} as {@code target} (stride 0 on broadcast dims), or null. */
    public static long[] expandStrides(long[] sizes, long[] strides, long[] target) {
        if (target.length < sizes.length) return null;
        long[] out = new long[target.length];
        int lead = target.length - sizes.length;
        for (int i = 0; i < target.length; i++) {
            if (i < lead) { out[i] = 0; continue; }
            long s = sizes[i - lead];
            if (s == target[i]) out[i] = strides[i - lead];
            else if (s == 1) out[i] = 0;
            else return null;
        }
        return out;
    }

    public static String str(long[] sizes) {
        return Arrays.toString(sizes);
    }
}
