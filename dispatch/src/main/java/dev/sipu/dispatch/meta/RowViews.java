package dev.sipu.dispatch.meta;

import dev.sipu.api.Shapes;
import dev.sipu.api.Tensor;
import dev.sipu.dispatch.Call;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * A reduction's operands as 2-D pieces: the input viewed as {@code [R, N]} (the kept dimensions
 * merged into R rows, the reduced ones into N columns, any strides) and each output as {@code [R]}
 * (a reduction) or {@code [R, N]} (softmax, cumsum), so a device kernel only ever walks rows.
 *
 * <p>The kept dimensions are merged where every operand steps through them evenly; where they do
 * not (softmax over a middle dimension of a contiguous tensor), the outer ones are iterated and each
 * iteration is one piece. Reduced dimensions that do not merge are first copied contiguous, the
 * only copy this makes.
 */
public final class RowViews implements AutoCloseable {
    /** One piece: the input [R, N] and the outputs in the order given, [R] or [R, N]. */
    public record Block(Tensor in, List<Tensor> outs) {}

    private final List<Block> blocks;
    private final List<Tensor> owned;
    private final long rowLength;

    private RowViews(List<Block> blocks, List<Tensor> owned, long rowLength) {
        this.blocks = blocks;
        this.owned = owned;
        this.rowLength = rowLength;
    }

    public List<Block> blocks() { return blocks; }

    /** N: the number of elements each row reduces. */
    public long rowLength() { return rowLength; }

    /**
     * Pieces of {@code in} reduced over {@code reduced} (a flag per dimension of in). The outputs are
     * either all {@code rowwise}, of in's shape (softmax, cumsum: one reduced dimension), or all
     * contiguous tensors holding the kept dimensions in order (reductions, any keepdim form).
     */
    public static RowViews of(Call c, Tensor in, boolean[] reduced, boolean rowwise, List<Tensor> outs) {
        List<Tensor> owned = new ArrayList<>();
        if (in.dim() == 0) {
            in = in.asStrided(new long[] {1}, new long[] {1}, in.offset());
            owned.add(in);
            reduced = new boolean[] {true};
        }
        int rank = in.dim();
        int[] perm = new int[rank];
        int k = 0;
        for (int d = 0; d < rank; d++) if (!reduced[d]) perm[k++] = d;
        int kept = k;
        for (int d = 0; d < rank; d++) if (reduced[d]) perm[k++] = d;

        long[] sizes = permute(in.sizes(), perm);
        long[] inStrides = permute(in.strides(), perm);
        long n = 1;
        for (int d = kept; d < rank; d++) n *= sizes[d];
        long inOffset = in.offset();
        if (!merges(sizes, inStrides, kept, rank)) {
            Tensor permuted = in.asStrided(sizes, inStrides, in.offset());
            try (permuted) {
                Tensor copy = (Tensor) c.dispatcher().call("aten::clone", permuted);
                owned.add(copy);
                in = copy;
            }
            inStrides = Shapes.contiguousStrides(sizes);
            inOffset = 0;
        }
        long inN = mergedStride(sizes, inStrides, kept, rank);

        // Per operand: strides over the kept dims, and its offset and column stride.
        int ops = outs.size() + 1;
        long[][] keptStrides = new long[ops][];
        long[] base = new long[ops];
        long[] colStride = new long[ops];
        keptStrides[0] = Arrays.copyOf(inStrides, kept);
        base[0] = inOffset;
        colStride[0] = inN;
        long[] keptSizes = Arrays.copyOf(sizes, kept);
        for (int i = 0; i < outs.size(); i++) {
            Tensor o = outs.get(i);
            base[i + 1] = o.offset();
            if (rowwise) {
                long[] s = o.dim() == 0 ? new long[] {1} : permute(o.strides(), perm);
                keptStrides[i + 1] = Arrays.copyOf(s, kept);
                colStride[i + 1] = mergedStride(sizes, s, kept, rank);
            } else {
                keptStrides[i + 1] = Shapes.contiguousStrides(keptSizes);
            }
        }
        // The smallest j such that kept dims j..kept-1 merge for every operand.
        int j = kept;
        while (j > 0 && mergesAll(keptSizes, keptStrides, j - 1, kept)) j--;
        if (j == kept && kept > 0) j = kept - 1;

        long rows = 1;
        for (int d = j; d < kept; d++) rows *= keptSizes[d];
        long[] rowStride = new long[ops];
        for (int op = 0; op < ops; op++) rowStride[op] = mergedStride(keptSizes, keptStrides[op], j, kept);

        List<Block> blocks = new ArrayList<>();
        long outer = 1;
        for (int d = 0; d < j; d++) outer *= keptSizes[d];
        long[] idx = new long[j];
        Tensor source = in;
        for (long b = 0; b < outer; b++) {
            long[] off = base.clone();
            for (int d = 0; d < j; d++) for (int op = 0; op < ops; op++) off[op] += idx[d] * keptStrides[op][d];
            Tensor inView = source.asStrided(new long[] {rows, n}, new long[] {rowStride[0], colStride[0]}, off[0]);
            owned.add(inView);
            List<Tensor> outViews = new ArrayList<>(outs.size());
            for (int i = 0; i < outs.size(); i++) {
                Tensor v = rowwise
                        ? outs.get(i).asStrided(new long[] {rows, n}, new long[] {rowStride[i + 1], colStride[i + 1]}, off[i + 1])
                        : outs.get(i).asStrided(new long[] {rows}, new long[] {rowStride[i + 1]}, off[i + 1]);
                owned.add(v);
                outViews.add(v);
            }
            blocks.add(new Block(inView, List.copyOf(outViews)));
            for (int d = j - 1; d >= 0 && ++idx[d] == keptSizes[d]; d--) idx[d] = 0;
        }
        return new RowViews(List.copyOf(blocks), owned, n);
    }

    @Override
    public void close() {
        owned.forEach(Tensor::close);
    }

    private static long[] permute(long[] a, int[] perm) {
        long[] r = new long[perm.length];
        for (int i = 0; i < perm.length; i++) r[i] = a[perm[i]];
        return r;
    }

    /** Whether dims [from, to) step evenly (size-1 dims ignored), i.e. are one dimension in memory. */
    static boolean merges(long[] sizes, long[] strides, int from, int to) {
        int inner = -1;
        for (int d = to - 1; d >= from; d--) {
            if (sizes[d] == 1) continue;
            if (inner >= 0 && strides[d] != strides[inner] * sizes[inner]) return false;
            inner = d;
        }
        return true;
    }

    private static boolean mergesAll(long[] sizes, long[][] strides, int from, int to) {
        for (long[] s : strides) if (!merges(sizes, s, from, to)) return false;
        return true;
    }

    /** The stride of the merged dims [from, to): that of the innermost non-1 dim (1 when there is none). */
    private static long mergedStride(long[] sizes, long[] strides, int from, int to) {
        for (int d = to - 1; d >= from; d--) if (sizes[d] != 1) return strides[d];
        return 1;
    }
}
