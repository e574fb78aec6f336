package dev.sipu.cpu.kernels;

import dev.sipu.api.DType;
import dev.sipu.api.Elements;
import dev.sipu.api.Generator;
import dev.sipu.api.Tensor;
import dev.sipu.cpu.iter.Parallel;
import dev.sipu.dispatch.Call;
import dev.sipu.dispatch.meta.SortMeta;
import dev.sipu.dispatch.spi.Registrar;

import java.lang.foreign.MemorySegment;
import java.util.Arrays;
import java.util.List;

import static dev.sipu.dispatch.DispatchKey.CPU;

/**
 * sort, topk, nonzero, bincount, isin and exponential_ on CPU over the shared {@link SortMeta}
 * rules, with the same key order, stability, tie rule and random stream as the SIPU kernels:
 * floats compare as doubles with NaN above every number, integers as longs; equal keys keep
 * their input order; exponential_ draws {@link Generator#uniform} for element i at offset + i.
 */
public final class SortKernels {
    private SortKernels() {}

    public static void register(Registrar r) {
        r.register("aten::sort", CPU, SortKernels::sort);
        r.register("aten::sort.stable", CPU, SortKernels::sort);
        r.register("aten::topk", CPU, c -> {
            try (SortMeta.Rows rows = SortMeta.topk(c)) {
                int k = (int) c.i64(1);
                boolean largest = c.bool(3);
                forRows(rows, (keys, idx, tmp) -> keys.top(idx, tmp, k, largest));
                return rows.take();
            }
        });
        r.register("aten::nonzero", CPU, SortKernels::nonzero);
        r.register("aten::bincount", CPU, SortKernels::bincount);
        r.register("aten::isin.Tensor_Tensor", CPU, SortKernels::isin);
        r.register("aten::exponential_", CPU, c -> {
            SortMeta.Draws d = SortMeta.exponential(c);
            Tensor self = c.tensor(0);
            long n = self.numel();
            int tasks = Parallel.tasks(n);
            Parallel.forEach(tasks, t -> {
                for (long i = n * t / tasks, end = n * (t + 1) / tasks; i < end; i++) {
                    double u = Generator.uniform(d.seed(), d.offset() + i);
                    Elements.putDouble(self.storage().memory(), Elements.byteOffsetOf(self, i), self.dtype(), -Math.log1p(-u) / d.lambd());
                }
            });
            return self;
        });
    }

    private static List<Tensor> sort(Call c) {
        try (SortMeta.Rows rows = SortMeta.sort(c)) {
            boolean desc = SortMeta.descending(c);
            forRows(rows, (keys, idx, tmp) -> keys.sort(idx, tmp, desc));
            return rows.take();
        }
    }

    /** One row's keys: doubles for floating types, longs otherwise. */
    private static final class Keys {
        final double[] f;
        final long[] l;

        Keys(DType t, int n) {
            f = t.isFloatingPoint() ? new double[n] : null;
            l = f == null ? new long[n] : null;
        }

        void load(Tensor in, long r) {
            MemorySegment m = in.storage().memory();
            DType t = in.dtype();
            long item = t.itemSize(), base = in.byteOffset() + r * in.strides()[0] * item, cs = in.strides()[1] * item;
            int n = f != null ? f.length : l.length;
            for (int j = 0; j < n; j++) {
                if (f != null) f[j] = Elements.getDouble(m, base + j * cs, t);
                else l[j] = Elements.getLong(m, base + j * cs, t);
            }
        }

        /** Whether position a goes strictly before b (descending: larger first; NaN above every number). */
        boolean before(int a, int b, boolean desc) {
            if (f != null) {
                double x = f[a], y = f[b];
                return desc ? (Double.isNaN(x) && !Double.isNaN(y)) || x > y : (Double.isNaN(y) && !Double.isNaN(x)) || x < y;
            }
            return desc ? l[a] > l[b] : l[a] < l[b];
        }

        /** Stable merge sort of idx; returns the array holding the result (idx or tmp). */
        int[] sort(int[] idx, int[] tmp, boolean desc) {
            int n = idx.length;
            for (int j = 0; j < n; j++) idx[j] = j;
            int[] src = idx, dst = tmp;
            for (int w = 1; w < n; w *= 2) {
                for (int lo = 0; lo < n; lo += 2 * w) {
                    int mid = Math.min(lo + w, n), hi = Math.min(lo + 2 * w, n), a = lo, b = mid, o = lo;
                    while (a < mid && b < hi) dst[o++] = before(src[b], src[a], desc) ? src[b++] : src[a++];
                    while (a < mid) dst[o++] = src[a++];
                    while (b < hi) dst[o++] = src[b++];
                }
                int[] t = src;
                src = dst;
                dst = t;
            }
            return src;
        }

        /** The k best positions in order (ties to the lower index). */
        int[] top(int[] idx, int[] tmp, int k, boolean largest) {
            if (k > 64) return sort(idx, tmp, largest);
            int n = idx.length, m = 0;
            for (int j = 0; j < n; j++) {
                if (m == k && !before(j, idx[m - 1], largest)) continue;
                int p = m < k ? m++ : k - 1;
                while (p > 0 && before(j, idx[p - 1], largest)) {
                    idx[p] = idx[p - 1];
                    p--;
                }
                idx[p] = j;
            }
            return idx;
        }
    }

    private interface RowOrder {
        int[] order(Keys keys, int[] idx, int[] tmp);
    }

    /** Orders each row and writes values (copied bit for bit from the input) and indices for the first cols positions. */
    private static void forRows(SortMeta.Rows rows, RowOrder order) {
        Tensor in = rows.in(), values = rows.values(), indices = rows.indices();
        long r0 = in.sizes()[0];
        int n = Math.toIntExact(in.sizes()[1]), cols = (int) values.sizes()[1];
        if (r0 == 0 || cols == 0) return;
        long item = in.dtype().itemSize();
        MemorySegment im = in.storage().memory(), vm = values.storage().memory(), xm = indices.storage().memory();
        long[] is = in.strides();
        int tasks = Parallel.tasks(r0 * (long) n);
        Parallel.forEach(tasks, t -> {
            Keys keys = new Keys(in.dtype(), n);
            int[] idx = new int[n], tmp = new int[n];
            for (long r = r0 * t / tasks, end = r0 * (t + 1) / tasks; r < end; r++) {
                keys.load(in, r);
                int[] best = order.order(keys, idx, tmp);
                long src = in.byteOffset() + r * is[0] * item;
                for (int j = 0; j < cols; j++) {
                    MemorySegment.copy(im, src + best[j] * is[1] * item, vm, values.byteOffset() + (r * cols + j) * item, item);
                    Elements.putLong(xm, indices.byteOffset() + (r * cols + j) * 8, DType.INT64, best[j]);
                }
            }
        });
    }

    private static Tensor nonzero(Call c) {
        Tensor self = c.tensor(0);
        long n = self.numel();
        int rank = self.dim();
        long count = 0;
        for (long i = 0; i < n; i++) if (nonzeroAt(self, i)) count++;
        Tensor out = c.dispatcher().empty(new long[] {count, rank}, DType.INT64, c.device());
        long[] sizes = self.sizes(), at = new long[rank];
        MemorySegment om = out.storage().memory();
        long row = 0;
        for (long i = 0; i < n; i++) {
            if (nonzeroAt(self, i)) {
                long rest = i;
                for (int d = rank - 1; d >= 0; d--) {
                    at[d] = rest % sizes[d];
                    rest /= sizes[d];
                }
                for (int d = 0; d < rank; d++) Elements.putLong(om, out.byteOffset() + (row * rank + d) * 8, DType.INT64, at[d]);
                row++;
            }
        }
        return out;
    }

    private static boolean nonzeroAt(Tensor t, long i) {
        return t.dtype().isFloatingPoint() ? Elements.getDouble(t, i) != 0 : Elements.getLong(t, i) != 0;
    }

    private static Tensor bincount(Call c) {
        SortMeta.Bincount b = SortMeta.bincount(c);
        Tensor self = b.self(), w = b.weights();
        long n = self.numel(), min = 0, max = 0;
        for (long i = 0; i < n; i++) {
            long v = Elements.getLong(self, i);
            min = i == 0 ? v : Math.min(min, v);
            max = i == 0 ? v : Math.max(max, v);
        }
        long bins = SortMeta.bins(c, b, n, min, max);
        Tensor out = c.dispatcher().empty(new long[] {bins}, b.outType(), c.device());
        MemorySegment om = out.storage().memory();
        DType ot = out.dtype();
        for (long i = 0; i < bins; i++) Elements.putLong(om, out.byteOffset() + i * ot.itemSize(), ot, 0);
        for (long i = 0; i < n; i++) {
            long at = out.byteOffset() + Elements.getLong(self, i) * ot.itemSize();
            if (w == null) {
                Elements.putLong(om, at, ot, Elements.getLong(om, at, ot) + 1);
            } else if (ot == DType.FLOAT32) {
                // float weights accumulate in float, as PyTorch's CPU kernel does
                Elements.putDouble(om, at, ot, (float) Elements.getDouble(om, at, ot) + (float) Elements.getDouble(w, i));
            } else {
                Elements.putDouble(om, at, ot, Elements.getDouble(om, at, ot) + Elements.getDouble(w, i));
            }
        }
        return out;
    }

    private static Tensor isin(Call c) {
        try (SortMeta.IsIn in = SortMeta.isin(c)) {
            Tensor e = in.elements(), t = in.test();
            boolean fl = t.dtype().isFloatingPoint();
            long m = t.numel();
            double[] fs = fl ? new double[Math.toIntExact(m)] : null;
            long[] ls = fl ? null : new long[Math.toIntExact(m)];
            int kept = 0;
            for (long i = 0; i < m; i++) {
                if (fl) {
                    double v = Elements.getDouble(t, i);
                    if (!Double.isNaN(v)) fs[kept++] = v; // NaN matches nothing
                } else {
                    ls[kept++] = Elements.getLong(t, i);
                }
            }
            if (fl) Arrays.sort(fs, 0, kept);
            else Arrays.sort(ls, 0, kept);
            Tensor out = c.dispatcher().empty(e.sizes(), DType.BOOL, c.device());
            MemorySegment om = out.storage().memory();
            long n = e.numel();
            for (long i = 0; i < n; i++) {
                boolean found;
                if (fl) {
                    double v = Elements.getDouble(e, i);
                    found = !Double.isNaN(v) && Arrays.binarySearch(fs, 0, kept, v) >= 0;
                } else {
                    found = Arrays.binarySearch(ls, 0, kept, Elements.getLong(e, i)) >= 0;
                }
                Elements.putLong(om, out.byteOffset() + i, DType.BOOL, found != in.invert() ? 1 : 0);
            }
            return out;
        }
    }
}
