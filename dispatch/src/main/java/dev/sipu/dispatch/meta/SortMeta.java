package dev.sipu.dispatch.meta;

import dev.sipu.api.DType;
import dev.sipu.api.Generator;
import dev.sipu.api.MemoryFormat;
import dev.sipu.api.Shapes;
import dev.sipu.api.Tensor;
import dev.sipu.api.TypePromotion;
import dev.sipu.dispatch.Call;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * The rules of sort, sort.stable, topk, bincount, isin and exponential_, written once for every
 * device. Sort and topk work on rows: the op's dim is moved last and the rest merged into R rows
 * ({@link Rows}), so a device kernel only sorts or selects within rows of N; the results are
 * contiguous [R, cols] buffers handed back in self's dimension order.
 */
public final class SortMeta {
    private SortMeta() {}

    /** The input as [R, N] rows and the outputs [R, cols] (values in self's dtype, int64 indices). */
    public static final class Rows implements AutoCloseable {
        private final Tensor in, values, indices;
        private final Tensor valuesResult, indicesResult;
        private final List<Tensor> owned;
        private boolean taken;

        private Rows(Tensor in, Tensor values, Tensor indices, Tensor valuesResult, Tensor indicesResult, List<Tensor> owned) {
            this.in = in;
            this.values = values;
            this.indices = indices;
            this.valuesResult = valuesResult;
            this.indicesResult = indicesResult;
            this.owned = owned;
        }

        public Tensor in() { return in; }
        public Tensor values() { return values; }
        public Tensor indices() { return indices; }

        /** The (values, indices) results in self's layout; after this, closing keeps them. */
        public List<Tensor> take() {
            taken = true;
            return List.of(valuesResult, indicesResult);
        }

        @Override
        public void close() {
            for (Tensor t : owned) t.close();
            if (!taken) {
                valuesResult.close();
                indicesResult.close();
            }
        }
    }

    /** {@code sort(self, dim, descending)} and {@code sort.stable(self, *, stable, dim, descending)}: every sort is stable. */
    public static Rows sort(Call c) {
        boolean stableOverload = c.op().equals("aten::sort.stable");
        int dimArg = stableOverload ? 2 : 1;
        Tensor self = c.tensor(0);
        int dim = ReductionMeta.wrap(c, dimArg, c.i64(dimArg), self.dim());
        return rows(c, self, dim, size(self, dim));
    }

    /** Whether a sort call asks for descending order. */
    public static boolean descending(Call c) {
        return c.bool(c.op().equals("aten::sort.stable") ? 3 : 2);
    }

    /** {@code topk(self, k, dim, largest, sorted)}: k within [0, size(dim)]; results always sorted. */
    public static Rows topk(Call c) {
        Tensor self = c.tensor(0);
        int dim = ReductionMeta.wrap(c, 2, c.i64(2), self.dim());
        long k = c.i64(1);
        if (k < 0 || k > size(self, dim)) throw c.error(1, "selected index k out of range: k = " + k + ", size = " + size(self, dim));
        return rows(c, self, dim, k);
    }

    private static long size(Tensor self, int dim) {
        return self.dim() == 0 ? 1 : self.sizes()[dim];
    }

    /** self with {@code dim} moved last, as [R, N] rows (a view where the leading dims merge, else a contiguous copy). */
    private static Rows rows(Call c, Tensor self, int dim, long cols) {
        int rank = self.dim();
        long[] sizes = rank == 0 ? new long[] {1} : self.sizes(), strides = rank == 0 ? new long[] {0} : self.strides();
        int r = sizes.length;
        int[] perm = new int[r];
        for (int d = 0, k = 0; d < r; d++) if (d != dim) perm[k++] = d;
        perm[r - 1] = rank == 0 ? 0 : dim;
        long[] ms = new long[r], mst = new long[r];
        for (int i = 0; i < r; i++) {
            ms[i] = sizes[perm[i]];
            mst[i] = strides[perm[i]];
        }
        long n = ms[r - 1], rows = 1;
        for (int i = 0; i < r - 1; i++) rows = Math.multiplyExact(rows, ms[i]);
        List<Tensor> owned = new ArrayList<>();
        Tensor values = null, indices = null;
        try {
            Long rowStride = mergedStride(ms, mst);
            Tensor in;
            if (rowStride != null) {
                in = self.asStrided(new long[] {rows, n}, new long[] {rowStride, mst[r - 1]}, self.offset());
            } else {
                try (Tensor moved = self.asStrided(ms, mst, self.offset())) {
                    Tensor copy = (Tensor) c.dispatcher().call("aten::clone", new Object[] {moved},
                            Map.of("memory_format", MemoryFormat.CONTIGUOUS_FORMAT));
                    owned.add(copy);
                    in = copy.asStrided(new long[] {rows, n}, new long[] {n, 1}, copy.offset());
                }
            }
            owned.add(in);
            values = c.dispatcher().empty(new long[] {rows, cols}, self.dtype(), c.device());
            owned.add(values);
            indices = c.dispatcher().empty(new long[] {rows, cols}, DType.INT64, c.device());
            owned.add(indices);
            // Results: [leading..., cols] contiguous, viewed back in self's dimension order.
            long[] outSizes = new long[rank], outStrides = new long[rank];
            if (rank > 0) {
                long[] os = ms.clone();
                os[r - 1] = cols;
                long[] ost = Shapes.contiguousStrides(os);
                for (int i = 0; i < r; i++) {
                    outSizes[perm[i]] = os[i];
                    outStrides[perm[i]] = ost[i];
                }
            }
            Tensor vr = values.asStrided(outSizes, outStrides, 0);
            Tensor ir;
            try {
                ir = indices.asStrided(outSizes, outStrides, 0);
            } catch (RuntimeException e) {
                vr.close();
                throw e;
            }
            return new Rows(in, values, indices, vr, ir, owned);
        } catch (RuntimeException e) {
            for (Tensor t : owned) t.close();
            throw e;
        }
    }

    /** The stride of the leading dims merged into one, or null when they do not nest (size-1 dims ignored). */
    private static Long mergedStride(long[] sizes, long[] strides) {
        long stride = 0, expected = 0;
        boolean any = false;
        for (int i = sizes.length - 2; i >= 0; i--) {
            if (sizes[i] == 1) continue;
            if (!any) {
                stride = strides[i];
                any = true;
            } else if (strides[i] != expected) {
                return null;
            }
            expected = strides[i] * sizes[i];
        }
        return stride;
    }

    /** {@code bincount(self, weights?, minlength)}: the checked arguments and the output dtype. */
    public record Bincount(Tensor self, Tensor weights, long minlength, DType outType) {}

    public static Bincount bincount(Call c) {
        Tensor self = c.tensor(0), weights = c.optTensor(1);
        long minlength = c.i64(2);
        if (self.dim() != 1 || !self.dtype().isIntegral() || self.dtype().isBool()) {
            throw c.error(0, "bincount only supports 1-d non-negative integral inputs.");
        }
        if (minlength < 0) throw c.error(2, "minlength should be >= 0");
        if (weights != null && (weights.dim() != 1 || weights.sizes()[0] != self.sizes()[0])) {
            throw c.error(1, "weights should be 1-d and have the same length as input");
        }
        if (weights != null && !weights.device().equals(self.device())) {
            throw c.error(1, "weights must be on the device of self");
        }
        DType out = weights == null ? DType.INT64 : weights.dtype() == DType.FLOAT32 ? DType.FLOAT32 : DType.FLOAT64;
        return new Bincount(self, weights, minlength, out);
    }

    /** The number of bins for values in [min, max] (count = number of values); negative values are refused. */
    public static long bins(Call c, Bincount b, long count, long min, long max) {
        if (count > 0 && min < 0) throw c.error(0, "bincount only supports 1-d non-negative integral inputs.");
        long bins = count == 0 ? b.minlength() : Math.max(b.minlength(), Math.addExact(max, 1));
        return bins;
    }

    /** {@code isin(elements, test_elements, *, assume_unique, invert)}: both operands in their common dtype. */
    public record IsIn(Tensor elements, Tensor test, boolean invert, List<Tensor> owned) implements AutoCloseable {
        @Override
        public void close() {
            for (Tensor t : owned) t.close();
        }
    }

    public static IsIn isin(Call c) {
        Tensor e = c.tensor(0), t = c.tensor(1);
        DType common = TypePromotion.resultType(e, t);
        if (common.isFloat8()) throw c.error(0, "\"isin\" not implemented for '" + common + "'");
        List<Tensor> owned = new ArrayList<>();
        try {
            Tensor ec = convert(c, e, common, owned), tc = convert(c, t, common, owned);
            return new IsIn(ec, tc, c.bool(3), owned);
        } catch (RuntimeException ex) {
            for (Tensor o : owned) o.close();
            throw ex;
        }
    }

    private static Tensor convert(Call c, Tensor t, DType to, List<Tensor> owned) {
        if (t.dtype() == to && t.device().equals(c.device())) return t;
        Tensor r = (Tensor) c.dispatcher().call("aten::_to_copy", new Object[] {t}, Map.of("dtype", to, "device", c.device()));
        owned.add(r);
        return r;
    }

    /** The draws of an {@code exponential_(self, lambd, *, generator)} call. */
    public record Draws(long seed, long offset, double lambd) {}

    public static Draws exponential(Call c) {
        Tensor self = c.tensor(0);
        double lambd = c.f64(1);
        if (!self.dtype().isFloatingPoint() || self.dtype().isFloat8()) {
            throw c.error(0, "\"exponential_cpu\" not implemented for '" + self.dtype() + "'");
        }
        if (!(lambd > 0)) throw c.error(1, "exponential_ expects lambda > 0.0, but found lambda=" + lambd);
        Generator g = c.arg(2) instanceof Generator given ? given : c.dispatcher().defaultGenerator();
        return new Draws(g.seed(), g.reserve(self.numel()), lambd);
    }
}
