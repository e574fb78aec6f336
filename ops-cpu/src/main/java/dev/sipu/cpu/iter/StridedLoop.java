package dev.sipu.cpu.iter;

import dev.sipu.api.Tensor;

/**
 * The CPU iteration core, in the spirit of PyTorch's TensorIterator: operands of one shape with any
 * strides (0 for broadcast, overlapping reads allowed) are walked as 1-D runs. Size-1 dimensions are
 * dropped and dimensions that are contiguous for every operand are merged, so a contiguous tensor is
 * one run however many dimensions it has. Kernels supply only the inner loop.
 */
public final class StridedLoop {
    private StridedLoop() {}

    /** The inner loop over one run: per operand, the byte offset of the first element and the byte stride. */
    @FunctionalInterface
    public interface Body {
        void run(long[] offsets, long[] strides, long n);
    }

    /** Runs {@code body} over every element of {@code operands} (all of {@code operands[0]}'s shape). */
    public static void forEach(Tensor[] operands, Body body) {
        int nops = operands.length;
        long[] shape = operands[0].sizes();
        int nd = shape.length;
        long[][] strides = new long[nops][];
        long[] base = new long[nops];
        for (int k = 0; k < nops; k++) {
            Tensor t = operands[k];
            strides[k] = t.strides();
            int item = t.dtype().itemSize();
            for (int d = 0; d < nd; d++) strides[k][d] *= item;
            base[k] = t.byteOffset();
        }
        for (long s : shape) if (s == 0) return;

        // Coalesce from the innermost dimension outwards: dims[0] is the innermost.
        long[] size = new long[Math.max(nd, 1)];
        long[][] st = new long[nops][Math.max(nd, 1)];
        int n = 0;
        for (int d = nd - 1; d >= 0; d--) {
            if (shape[d] == 1) continue;
            if (n > 0 && mergeable(strides, d, st, n - 1, size[n - 1], nops)) {
                size[n - 1] *= shape[d];
                continue;
            }
            size[n] = shape[d];
            for (int k = 0; k < nops; k++) st[k][n] = strides[k][d];
            n++;
        }
        if (n == 0) {           // a single element
            size[0] = 1;
            n = 1;
        }
        long inner = size[0];
        long[] innerStride = new long[nops];
        for (int k = 0; k < nops; k++) innerStride[k] = st[k][0];
        long[] off = base.clone();
        long[] counter = new long[n];
        while (true) {
            body.run(off.clone(), innerStride, inner);
            int d = 1;
            while (d < n) {
                counter[d]++;
                for (int k = 0; k < nops; k++) off[k] += st[k][d];
                if (counter[d] < size[d]) break;
                for (int k = 0; k < nops; k++) off[k] -= st[k][d] * size[d];
                counter[d] = 0;
                d++;
            }
            if (d >= n) return;
        }
    }

    /** Dimension {@code d} folds into coalesced dimension {@code j} when every operand steps over it contiguously. */
    private static boolean mergeable(long[][] strides, int d, long[][] st, int j, long sizeJ, int nops) {
        for (int k = 0; k < nops; k++) {
            if (strides[k][d] != st[k][j] * sizeJ) return false;
        }
        return true;
    }
}
