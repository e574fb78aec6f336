package dev.sipu.dispatch.meta;

import dev.sipu.api.DType;
import dev.sipu.api.Shapes;
import dev.sipu.api.Tensor;
import dev.sipu.dispatch.Call;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * The indexing ops as one plan, after PyTorch's index kernels: the indexed tensor restrided to the
 * result's shape (stride 0 where an index replaces a dimension), every index tensor viewed at the
 * result's shape, and per index the size and stride of the dimension it selects along. A device then
 * needs one gather ({@code index}, {@code index_select}, {@code gather}) and one scatter
 * ({@code index_put_}, {@code scatter_}); both check every index value before the first store.
 */
public final class IndexMeta {
    private IndexMeta() {}

    /**
     * A plan: {@code base} is the indexed tensor restrided to {@code shape}; {@code indices.get(k)}
     * selects along a dimension of size {@code sizes[k]} and element stride {@code strides[k]};
     * negative index values wrap when {@code wrapNegative} (advanced indexing) and are errors otherwise
     * ({@code index_select}, {@code gather}, {@code scatter_}, as PyTorch checks them).
     * Owns its views (and any tensors made for it): close it.
     */
    public record Plan(Tensor base, List<Tensor> indices, long[] sizes, long[] strides, long[] shape, boolean wrapNegative,
                       List<Tensor> owned) implements AutoCloseable {
        public long numel() { return Shapes.numel(shape); }

        @Override
        public void close() {
            owned.forEach(Tensor::close);
        }
    }

    /** {@code index_select(self, dim, index)}: a 1-D (or 0-dim) int64/int32 index along dim. */
    public static Plan indexSelect(Call c) {
        Tensor self = c.tensor(0), index = c.tensor(2);
        int dim = ReductionMeta.wrap(c, 1, c.i64(1), self.dim());
        checkIndexDtype(c, 2, index, false);
        if (index.dim() > 1) throw c.error(2, "index_select(): Index is supposed to be a vector");
        long n = index.numel();
        if (self.dim() == 0) {
            if (n != 1) throw c.error(2, "index_select(): Index to scalar can have only 1 value, got " + n + " value(s)");
            Tensor idx = index.asStrided(new long[0], new long[0], index.offset());
            return plan(self.asStrided(new long[0], new long[0], self.offset()), List.of(idx), new long[] {1}, new long[] {0},
                    new long[0]);
        }
        long[] shape = self.sizes();
        shape[dim] = n;
        long[] srcStrides = self.strides();
        srcStrides[dim] = 0;
        long[] idxStrides = new long[shape.length];
        idxStrides[dim] = index.dim() == 0 ? 0 : index.strides()[0];
        return plan(self.asStrided(shape, srcStrides, self.offset()), List.of(index.asStrided(shape, idxStrides, index.offset())),
                new long[] {self.sizes()[dim]}, new long[] {self.strides()[dim]}, shape);
    }

    /** {@code gather(self, dim, index)}: out[..i..] = self[..index[..i..]..] along dim; int64 index of self's rank. */
    public static Plan gather(Call c) {
        Tensor self = c.tensor(0), index = c.tensor(2);
        int dim = ReductionMeta.wrap(c, 1, c.i64(1), self.dim());
        if (index.dtype() != DType.INT64) throw c.error(2, "gather(): Expected dtype int64 for index");
        checkSameRank(c, "gather", self, index);
        for (int d = 0; d < index.dim(); d++) {
            if (d != dim && index.sizes()[d] > nonEmptySize(self, d)) {
                throw c.error(2, "Size does not match at dimension " + d + " expected index " + Arrays.toString(index.sizes())
                        + " to be no larger than self " + Arrays.toString(self.sizes()) + " apart from dimension " + dim);
            }
        }
        return alongDim(self, index, dim);
    }

    /**
     * {@code scatter_.src(self, dim, index, src)} and {@code scatter_.value(self, dim, index, value)}:
     * the plan over self and the values to store, src restrided to index's shape or the value
     * wrapped in self's dtype.
     */
    public static Plan scatter(Call c) {
        Tensor self = c.tensor(0), index = c.tensor(2);
        int dim = ReductionMeta.wrap(c, 1, c.i64(1), self.dim());
        if (index.dtype() != DType.INT64) throw c.error(2, "scatter_(): Expected dtype int64 for index");
        checkSameRank(c, "scatter_", self, index);
        Tensor src = c.arg(3) instanceof Tensor t ? t : null;
        if (src != null) {
            if (src.dtype() != self.dtype()) {
                throw c.error(3, "scatter(): Expected self.dtype to be equal to src.dtype");
            }
            checkSameRank(c, "scatter_", self, src);
        }
        for (int d = 0; d < index.dim(); d++) {
            long i = index.sizes()[d];
            if ((d != dim && i > nonEmptySize(self, d)) || (src != null && i > nonEmptySize(src, d))) {
                throw c.error(2, "Expected index " + Arrays.toString(index.sizes()) + " to be smaller than self "
                        + Arrays.toString(self.sizes()) + " apart from dimension " + dim + " and to be smaller size than src "
                        + (src == null ? "" : Arrays.toString(src.sizes())));
            }
        }
        if (Overlap.hasInternalOverlap(self)) throw internalOverlap(c);
        Plan p = alongDim(self, index, dim);
        try {
            Tensor values = src != null ? src.asStrided(index.sizes(), sameRankStrides(src, index.dim()), src.offset())
                    : wrapped(c, 3, self.dtype(), index.sizes());
            List<Tensor> owned = new ArrayList<>(p.owned());
            owned.add(values);
            return new Plan(p.base(), withValues(p.indices(), values), p.sizes(), p.strides(), p.shape(), false, owned);
        } catch (RuntimeException e) {
            p.close();
            throw e;
        }
    }

    /** The values of a scatter plan (the first entry of its indices list is not an index but them). */
    public static Tensor values(Plan p) {
        return p.indices().get(0);
    }

    /** The index tensors of a scatter plan. */
    public static List<Tensor> scatterIndices(Plan p) {
        return p.indices().subList(1, p.indices().size());
    }

    /**
     * {@code index.Tensor(self, indices)}: advanced indexing with None entries and bool/uint8 masks
     * (which become their {@code nonzero} columns, computed on the device).
     */
    public static Plan index(Call c) {
        return advanced(c, c.tensor(0), c.arg(1), null);
    }

    /**
     * {@code _index_put_impl_(self, indices, values, accumulate, unsafe)}: the plan over self; values
     * (same dtype as self) broadcast to the indexing result come first in {@link Plan#indices()}
     * as for {@link #scatter}.
     */
    public static Plan indexPut(Call c) {
        Tensor self = c.tensor(0), values = c.tensor(2);
        if (values.dtype() != self.dtype()) {
            throw c.error(2, "Index put requires the source and destination dtypes match, got " + self.dtype()
                    + " for the destination and " + values.dtype() + " for the source.");
        }
        if (Overlap.hasInternalOverlap(self)) throw internalOverlap(c);
        return advanced(c, self, c.arg(1), values);
    }

    // ---- internals ----------------------------------------------------------------------------

    private static Plan advanced(Call c, Tensor self, Object list, Tensor values) {
        @SuppressWarnings("unchecked")
        List<Tensor> given = (List<Tensor>) list;
        List<Tensor> owned = new ArrayList<>();
        try {
            List<Tensor> idx = expandMasks(c, self, given, owned);
            if (idx.size() > self.dim()) {
                throw c.error(1, "too many indices for tensor of dimension " + self.dim() + " (got " + idx.size() + ")");
            }
            List<Integer> dims = new ArrayList<>();
            long[] b = null;
            for (int d = 0; d < idx.size(); d++) {
                Tensor t = idx.get(d);
                if (t == null) continue;
                dims.add(d);
                long[] nb = b == null ? t.sizes() : Shapes.broadcast(b, t.sizes());
                if (nb == null) {
                    throw c.error(1, "shape mismatch: indexing tensors could not be broadcast together with shapes "
                            + shapes(idx));
                }
                b = nb;
            }
            if (dims.isEmpty()) {
                throw c.error(1, "at least one index must be a tensor (all None is a view, not advanced indexing)");
            }
            boolean adjacent = dims.get(dims.size() - 1) - dims.get(0) == dims.size() - 1;
            long[] sizes = self.sizes(), strides = self.strides();
            // result dims: (before) B (after) when the indexed dims are adjacent, else B (rest)
            List<Long> shape = new ArrayList<>(), srcStrides = new ArrayList<>();
            int bAt;
            if (adjacent) {
                for (int d = 0; d < dims.get(0); d++) { shape.add(sizes[d]); srcStrides.add(strides[d]); }
                bAt = shape.size();
                for (long s : b) { shape.add(s); srcStrides.add(0L); }
                for (int d = dims.get(dims.size() - 1) + 1; d < sizes.length; d++) { shape.add(sizes[d]); srcStrides.add(strides[d]); }
            } else {
                bAt = 0;
                for (long s : b) { shape.add(s); srcStrides.add(0L); }
                for (int d = 0; d < sizes.length; d++) {
                    if (!dims.contains(d)) { shape.add(sizes[d]); srcStrides.add(strides[d]); }
                }
            }
            long[] result = shape.stream().mapToLong(Long::longValue).toArray();
            Tensor base = self.asStrided(result, srcStrides.stream().mapToLong(Long::longValue).toArray(), self.offset());
            owned.add(base);
            List<Tensor> views = new ArrayList<>();
            long[] selSizes = new long[dims.size()], selStrides = new long[dims.size()];
            for (int k = 0; k < dims.size(); k++) {
                Tensor t = idx.get(dims.get(k));
                long[] bs = Shapes.expandStrides(t.sizes(), t.strides(), b);
                long[] st = new long[result.length];
                System.arraycopy(bs, 0, st, bAt, bs.length);
                Tensor v = t.asStrided(result, st, t.offset());
                owned.add(v);
                views.add(v);
                selSizes[k] = sizes[dims.get(k)];
                selStrides[k] = strides[dims.get(k)];
            }
            if (values != null) {
                long[] vs = Shapes.expandStrides(values.sizes(), values.strides(), result);
                if (vs == null) {
                    throw c.error(2, "shape mismatch: value tensor of shape " + Arrays.toString(values.sizes())
                            + " cannot be broadcast to indexing result of shape " + Arrays.toString(result));
                }
                Tensor v = values.asStrided(result, vs, values.offset());
                owned.add(v);
                views = withValues(views, v);
            }
            return new Plan(base, List.copyOf(views), selSizes, selStrides, result, true, owned);
        } catch (RuntimeException e) {
            owned.forEach(Tensor::close);
            throw e;
        }
    }

    /** Index entries with every bool/uint8 mask replaced by the columns of its nonzero(). */
    private static List<Tensor> expandMasks(Call c, Tensor self, List<Tensor> given, List<Tensor> owned) {
        List<Tensor> out = new ArrayList<>();
        for (int k = 0; k < given.size(); k++) {
            Tensor t = given.get(k);
            if (t == null) {
                out.add(null);
                continue;
            }
            if (t.dtype() == DType.BOOL || t.dtype() == DType.UINT8) {
                int at = out.size();
                for (int j = 0; j < t.dim(); j++) {
                    if (at + j >= self.dim() || t.sizes()[j] != self.sizes()[at + j]) {
                        throw c.error(1, "The shape of the mask " + Arrays.toString(t.sizes()) + " at index " + k
                                + " does not match the shape of the indexed tensor " + Arrays.toString(self.sizes())
                                + " at index " + (at + j));
                    }
                }
                Tensor nz = (Tensor) c.dispatcher().call("aten::nonzero", t);
                owned.add(nz);
                for (int j = 0; j < t.dim(); j++) {
                    Tensor col = nz.asStrided(new long[] {nz.sizes()[0]}, new long[] {nz.strides()[0]},
                            nz.offset() + j * nz.strides()[1]);
                    owned.add(col);
                    out.add(col);
                }
                continue;
            }
            checkIndexDtype(c, 1, t, true);
            out.add(t);
        }
        return out;
    }

    private static Plan alongDim(Tensor self, Tensor index, int dim) {
        long[] shape = index.sizes();
        long[] srcStrides = sameRankStrides(self, shape.length);
        if (srcStrides.length > 0) srcStrides[dim] = 0;
        long size = self.dim() == 0 ? 1 : self.sizes()[dim], stride = self.dim() == 0 ? 0 : self.strides()[dim];
        return plan(self.asStrided(shape, srcStrides, self.offset()), List.of(index.asStrided(shape, index.strides(), index.offset())),
                new long[] {size}, new long[] {stride}, shape);
    }

    private static Plan plan(Tensor base, List<Tensor> indices, long[] sizes, long[] strides, long[] shape) {
        List<Tensor> owned = new ArrayList<>(indices);
        owned.add(base);
        return new Plan(base, indices, sizes, strides, shape, false, owned);
    }

    private static List<Tensor> withValues(List<Tensor> indices, Tensor values) {
        List<Tensor> r = new ArrayList<>(indices.size() + 1);
        r.add(values);
        r.addAll(indices);
        return List.copyOf(r);
    }

    private static Tensor wrapped(Call c, int arg, DType dtype, long[] shape) {
        Tensor t = c.dispatcher().empty(new long[0], dtype, c.device());
        try {
            c.dispatcher().call("aten::fill_.Scalar", t, ScalarCast.to(c, arg, dtype));
            Tensor v = t.asStrided(shape, new long[shape.length], t.offset());
            t.close();
            return v;
        } catch (RuntimeException e) {
            t.close();
            throw e;
        }
    }

    private static void checkIndexDtype(Call c, int arg, Tensor t, boolean masksAllowed) {
        DType d = t.dtype();
        if (d != DType.INT64 && d != DType.INT32) {
            throw c.error(arg, masksAllowed ? "tensors used as indices must be long, int, byte or bool tensors, got " + d
                    : "index_select(): Expected dtype int32 or int64 for index, got " + d);
        }
    }

    private static void checkSameRank(Call c, String op, Tensor self, Tensor index) {
        if (Math.max(index.dim(), 1) != Math.max(self.dim(), 1)) {
            throw c.error(2, "Index tensor must have the same number of dimensions as " + (op.equals("gather") ? "input" : "self")
                    + " tensor");
        }
    }

    /**
     * t's strides for a restride to `rank` dims: ranks differ only when one side is 0-dim and the
     * other has the single dim being indexed, whose stride the caller sets; the rest is zeros.
     */
    private static long[] sameRankStrides(Tensor t, int rank) {
        return t.dim() == rank ? t.strides() : new long[rank];
    }

    /** PyTorch's ensure_nonempty_size: a 0-dim tensor counts as one element along dim 0. */
    private static long nonEmptySize(Tensor t, int d) {
        return t.dim() == 0 ? 1 : t.sizes()[d];
    }

    private static RuntimeException internalOverlap(Call c) {
        return c.error(0, "unsupported operation: more than one element of the written-to tensor refers to a single memory"
                + " location. Please clone() the tensor before performing the operation.");
    }

    private static String shapes(List<Tensor> idx) {
        List<String> s = new ArrayList<>();
        for (Tensor t : idx) if (t != null) s.add(Arrays.toString(t.sizes()));
        return String.join(", ", s);
    }
}
