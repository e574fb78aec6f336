package dev.sipu.cpu.kernels;

import dev.sipu.api.DType;
import dev.sipu.api.Elements;
import dev.sipu.api.Tensor;
import dev.sipu.cpu.iter.Parallel;
import dev.sipu.dispatch.Call;
import dev.sipu.dispatch.meta.IndexMeta;
import dev.sipu.dispatch.spi.Registrar;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.List;
import java.util.function.Function;

import static dev.sipu.dispatch.DispatchKey.CPU;

/**
 * index, index_select, gather, scatter_ and index_put_ on CPU over the shared {@link IndexMeta}
 * plan: every index value is checked in a first pass, then elements are copied (whole rows when no
 * index varies along the innermost dimension, as for embedding lookups).
 */
public final class IndexKernels {
    private IndexKernels() {}

    public static void register(Registrar r) {
        r.register("aten::index_select", CPU, c -> gather(c, IndexMeta::indexSelect, 2));
        r.register("aten::gather", CPU, c -> gather(c, IndexMeta::gather, 2));
        r.register("aten::index.Tensor", CPU, c -> gather(c, IndexMeta::index, 1));
        r.register("aten::scatter_.src", CPU, c -> scatter(c, IndexMeta.scatter(c), false, 2));
        r.register("aten::scatter_.value", CPU, c -> scatter(c, IndexMeta.scatter(c), false, 2));
        r.register("aten::_index_put_impl_", CPU, c -> scatter(c, IndexMeta.indexPut(c), c.bool(3), 1));
    }

    private static Tensor gather(Call c, Function<Call, IndexMeta.Plan> meta, int indexArg) {
        try (IndexMeta.Plan p = meta.apply(c)) {
            Walk w = new Walk(p, p.indices(), p.base());
            w.validate(c, indexArg);
            Tensor out = c.dispatcher().empty(p.shape(), c.tensor(0).dtype(), c.device());
            long item = out.dtype().itemSize();
            MemorySegment src = p.base().storage().memory(), dst = out.storage().memory();
            long inner = w.inner();
            long outer = inner == 0 ? 0 : p.numel() / inner;
            boolean rows = w.indexInvariantInner() && w.innerStride(0) == 1;
            long dstBase = out.byteOffset(), srcBase = p.base().byteOffset();
            Parallel.forEach(Parallel.tasks(p.numel()), t -> {
                int tasks = Parallel.tasks(p.numel());
                long per = (outer + tasks - 1) / tasks;
                long[] off = new long[w.nops()];
                for (long o = t * per, end = Math.min(outer, (t + 1) * per); o < end; o++) {
                    w.offsetsAt(o * inner, off);
                    long at = o * inner * item;  // out is contiguous
                    if (rows) {
                        MemorySegment.copy(src, srcBase + (off[0] + w.selected(off)) * item, dst, dstBase + at, inner * item);
                        continue;
                    }
                    for (long i = 0; i < inner; i++) {
                        MemorySegment.copy(src, srcBase + (off[0] + w.selected(off)) * item, dst, dstBase + at + i * item, item);
                        w.stepInner(off);
                    }
                }
            });
            return out;
        }
    }

    /** Serial: duplicate indices must all accumulate, and without accumulate the last write wins. */
    private static Tensor scatter(Call c, IndexMeta.Plan p, boolean accumulate, int indexArg) {
        try (p) {
            Tensor values = IndexMeta.values(p);
            List<Tensor> indices = IndexMeta.scatterIndices(p);
            Walk w = new Walk(p, indices, p.base(), values);
            w.validate(c, indexArg);
            DType t = p.base().dtype();
            if (accumulate && t.isBool()) throw c.error(2, "index_put_ with accumulate=True is not supported for bool tensors");
            long item = t.itemSize();
            MemorySegment dst = p.base().storage().memory(), src = values.storage().memory();
            long dstBase = p.base().byteOffset(), srcBase = values.byteOffset();
            long[] off = new long[w.nops()];
            for (long pos = 0; pos < p.numel(); pos++) {
                w.offsetsAt(pos, off);
                long d = dstBase + (off[0] + w.selected(off)) * item, s = srcBase + off[1] * item;
                if (!accumulate) {
                    MemorySegment.copy(src, s, dst, d, item);
                } else if (t.isFloatingPoint()) {
                    double sum = Elements.getDouble(dst, d, t) + Elements.getDouble(src, s, t);
                    Elements.putDouble(dst, d, t, t == DType.FLOAT64 ? sum : (float) sum);
                } else {
                    Elements.putLong(dst, d, t, Elements.getLong(dst, d, t) + Elements.getLong(src, s, t));
                }
            }
            return c.tensor(0);
        }
    }

    /**
     * The plan's operands walked over the result shape: operand 0 is the restrided base, then any
     * values, then the index tensors; offsets are in elements.
     */
    private static final class Walk {
        private final IndexMeta.Plan plan;
        private final Tensor[] ops;
        private final int first;

        Walk(IndexMeta.Plan plan, List<Tensor> indices, Tensor... leading) {
            this.plan = plan;
            this.first = leading.length;
            this.ops = new Tensor[leading.length + indices.size()];
            System.arraycopy(leading, 0, ops, 0, leading.length);
            for (int k = 0; k < indices.size(); k++) ops[first + k] = indices.get(k);
        }

        int nops() { return ops.length; }

        long inner() {
            long[] s = plan.shape();
            return s.length == 0 ? 1 : s[s.length - 1];
        }

        long innerStride(int k) {
            long[] st = ops[k].strides();
            return st.length == 0 ? 1 : st[st.length - 1];
        }

        boolean indexInvariantInner() {
            if (plan.shape().length == 0) return false;
            for (int k = first; k < ops.length; k++) if (innerStride(k) != 0) return false;
            return true;
        }

        void offsetsAt(long pos, long[] off) {
            long[] shape = plan.shape();
            for (int k = 0; k < ops.length; k++) off[k] = 0;
            for (int d = shape.length - 1; d >= 0; d--) {
                long i = pos % shape[d];
                pos /= shape[d];
                for (int k = 0; k < ops.length; k++) off[k] += i * ops[k].strides()[d];
            }
        }

        void stepInner(long[] off) {
            for (int k = 0; k < ops.length; k++) off[k] += innerStride(k);
        }

        private long indexValue(int k, long[] off) {
            Tensor t = ops[first + k];
            long at = t.byteOffset() + off[first + k] * t.dtype().itemSize();
            return t.dtype() == DType.INT64 ? t.storage().memory().get(ValueLayout.JAVA_LONG_UNALIGNED, at)
                    : t.storage().memory().get(ValueLayout.JAVA_INT_UNALIGNED, at);
        }

        /** The element offset the indices select (values already validated). */
        long selected(long[] off) {
            long o = 0;
            for (int k = 0; k < plan.sizes().length; k++) {
                long v = indexValue(k, off);
                if (v < 0) v += plan.sizes()[k];
                o += v * plan.strides()[k];
            }
            return o;
        }

        /** The first out-of-range index value (in the result's element order) is the caller's error. */
        void validate(Call c, int indexArg) {
            long[] off = new long[ops.length];
            long[] sizes = plan.sizes();
            for (long pos = 0, n = plan.numel(); pos < n; pos++) {
                offsetsAt(pos, off);
                for (int k = 0; k < sizes.length; k++) {
                    long v = indexValue(k, off);
                    if (v < (plan.wrapNegative() ? -sizes[k] : 0) || v >= sizes[k]) {
                        throw c.error(indexArg, "index " + v + " is out of bounds for dimension with size " + sizes[k]);
                    }
                }
            }
        }
    }
}
