package dev.sipu.cpu.iter;

import dev.sipu.api.Tensor;

import java.lang.foreign.MemorySegment;
import java.util.Arrays;
import java.util.List;
import java.util.function.Supplier;

/**
 * The CPU iteration core, after PyTorch's TensorIterator: an output and inputs of one shape with
 * any strides (0 on broadcast dimensions, overlapping reads allowed) are walked as 1-D runs that a
 * kernel's {@link RunLoop} processes.
 *
 * <p>Set-up, once per op: size-1 dimensions are dropped; the remaining ones are ordered so that the
 * output's smallest stride is innermost (a transposed output is still written in memory order);
 * neighbouring dimensions that every operand steps through contiguously are merged. A contiguous
 * tensor of any rank is then one run, a row-broadcast is a run per row. Strides are kept in bytes.
 *
 * <p>Elements are numbered in the coalesced order, so any range of them is a list of runs: that is
 * how {@link #forEach} splits large iterations across threads.
 */
public final class TensorIter {
    private final int nops;
    private final MemorySegment[] data;
    private final long[] base;        // byte offset of element [0, ..., 0], per operand
    private final long[] sizes;       // coalesced dimensions, innermost first
    private final long[][] strides;   // [dim][operand], bytes
    private final long numel;

    private TensorIter(MemorySegment[] data, long[] base, long[] sizes, long[][] strides, long numel) {
        this.nops = data.length;
        this.data = data;
        this.base = base;
        this.sizes = sizes;
        this.strides = strides;
        this.numel = numel;
    }

    /** An iterator over {@code out} and {@code inputs}, which must all have out's shape. */
    public static TensorIter of(Tensor out, List<Tensor> inputs) {
        Tensor[] ops = new Tensor[inputs.size() + 1];
        ops[0] = out;
        for (int i = 0; i < inputs.size(); i++) ops[i + 1] = inputs.get(i);
        return of(ops);
    }

    /** An iterator over {@code ops[0]} (the output) and the inputs after it, all of one shape. */
    public static TensorIter of(Tensor... ops) {
        long[] shape = ops[0].sizes();
        int nops = ops.length;
        MemorySegment[] data = new MemorySegment[nops];
        long[] base = new long[nops];
        long[][] elementStrides = new long[nops][];
        for (int k = 0; k < nops; k++) {
            if (!Arrays.equals(ops[k].sizes(), shape)) {
                throw new IllegalArgumentException("operand " + k + " has shape " + Arrays.toString(ops[k].sizes())
                        + ", expected " + Arrays.toString(shape));
            }
            data[k] = ops[k].storage().memory();
            base[k] = ops[k].byteOffset();
            elementStrides[k] = ops[k].strides();
        }
        // Dimensions innermost first, size-1 ones dropped, strides in bytes.
        int nd = 0;
        long[] sizes = new long[shape.length];
        long[][] strides = new long[shape.length][];
        for (int d = shape.length - 1; d >= 0; d--) {
            if (shape[d] == 1) continue;
            long[] s = new long[nops];
            for (int k = 0; k < nops; k++) s[k] = elementStrides[k][d] * ops[k].dtype().itemSize();
            sizes[nd] = shape[d];
            strides[nd++] = s;
        }
        long numel = 1;
        for (long s : shape) numel *= s;
        sizes = Arrays.copyOf(sizes, nd);
        strides = Arrays.copyOf(strides, nd);
        reorder(sizes, strides);
        nd = coalesce(sizes, strides, nd);
        return new TensorIter(data, base, Arrays.copyOf(sizes, nd), Arrays.copyOf(strides, nd), numel);
    }

    /**
     * Insertion sort of the dimensions, innermost first, by the strides of the output, then of each
     * input in turn; a stride of 0 (broadcast) has no say, and a dimension with no say is stepped
     * over rather than stopping the sort (PyTorch's reorder_dimensions).
     */
    private static void reorder(long[] sizes, long[][] strides) {
        for (int i = 1; i < sizes.length; i++) {
            int outer = i;
            for (int inner = i - 1; inner >= 0; inner--) {
                int c = shouldSwap(sizes, strides, inner, outer);
                if (c > 0) {
                    swap(sizes, strides, inner, outer);
                    outer = inner;
                } else if (c < 0) {
                    break;
                }
            }
        }
    }

    /** > 0 when dimension {@code outer} belongs inside dimension {@code inner}, < 0 when not, 0 when no operand says. */
    private static int shouldSwap(long[] sizes, long[][] strides, int inner, int outer) {
        long[] a = strides[inner], b = strides[outer];
        for (int k = 0; k < a.length; k++) {
            if (a[k] == 0 || b[k] == 0) continue;
            if (a[k] != b[k]) return Long.compare(a[k], b[k]);
            if (sizes[inner] > sizes[outer]) return 1;
        }
        return 0;
    }

    private static void swap(long[] sizes, long[][] strides, int i, int j) {
        long s = sizes[i];
        sizes[i] = sizes[j];
        sizes[j] = s;
        long[] t = strides[i];
        strides[i] = strides[j];
        strides[j] = t;
    }

    /** Merges dimension d+1 into d wherever every operand steps over d contiguously; returns the new count. */
    private static int coalesce(long[] sizes, long[][] strides, int nd) {
        if (nd == 0) return 0;
        int out = 0;
        for (int d = 1; d < nd; d++) {
            boolean merge = true;
            for (int k = 0; k < strides[d].length && merge; k++) {
                merge = strides[out][k] * sizes[out] == strides[d][k];
            }
            if (merge) {
                sizes[out] *= sizes[d];
            } else {
                out++;
                sizes[out] = sizes[d];
                strides[out] = strides[d];
            }
        }
        return out + 1;
    }

    public long numel() { return numel; }

    /** Number of dimensions after coalescing (0 for a single element). */
    public int dims() { return sizes.length; }

    /** Size of coalesced dimension {@code d}, innermost first. */
    public long size(int d) { return sizes[d]; }

    /** Byte stride of operand {@code k} along coalesced dimension {@code d}. */
    public long stride(int d, int k) { return strides[d][k]; }

    /**
     * Runs every element, split across threads above {@link Parallel#GRAIN}. Each task asks
     * {@code loops} for its own loop, so a loop may keep per-thread scratch arrays.
     */
    public void forEach(Supplier<? extends RunLoop> loops) {
        if (numel == 0) return;
        int tasks = Parallel.tasks(numel);
        long per = (numel + tasks - 1) / tasks;
        Parallel.forEach(tasks, t -> forRange(t * per, Math.min(numel, (t + 1) * per), loops.get()));
    }

    /** Runs the elements [begin, end) in order on the calling thread. */
    public void forRange(long begin, long end, RunLoop loop) {
        if (begin >= end) return;
        long[] off = base.clone();
        if (sizes.length == 0) {
            loop.run(data, off, new long[nops], 1);
            return;
        }
        int nd = sizes.length;
        long[] idx = new long[nd];
        long rest = begin;
        for (int d = 0; d < nd; d++) {
            idx[d] = rest % sizes[d];
            rest /= sizes[d];
            for (int k = 0; k < nops; k++) off[k] += idx[d] * strides[d][k];
        }
        long[] inner = strides[0];
        for (long pos = begin; pos < end; ) {
            long n = Math.min(sizes[0] - idx[0], end - pos);
            loop.run(data, off, inner, n);
            pos += n;
            if (pos == end) break;
            // Step to the next run: carry through the outer dimensions like an odometer.
            for (int k = 0; k < nops; k++) off[k] += n * inner[k];
            idx[0] += n;
            for (int d = 0; idx[d] == sizes[d]; d++) {
                idx[d] = 0;
                idx[d + 1]++;
                for (int k = 0; k < nops; k++) off[k] += strides[d + 1][k] - sizes[d] * strides[d][k];
            }
        }
    }
}
