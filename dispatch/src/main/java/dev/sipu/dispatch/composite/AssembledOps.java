package dev.sipu.dispatch.composite;

import dev.sipu.api.DType;
import dev.sipu.api.MemoryFormat;
import dev.sipu.api.Scalar;
import dev.sipu.api.Shapes;
import dev.sipu.api.Tensor;
import dev.sipu.api.TypePromotion;
import dev.sipu.dispatch.Call;
import dev.sipu.dispatch.DispatchKey;
import dev.sipu.dispatch.meta.ReductionMeta;
import dev.sipu.dispatch.spi.Registrar;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * {@code cat}, {@code triu}, {@code repeat_interleave} and {@code resize_}: ops PyTorch gives a kernel per device,
 * assembled here once from each device's own native kernels ({@code copy_} into views of the
 * output, {@code arange}, comparisons and {@code where}), and registered for SIPU and CPU alike, so
 * they never fall back. The checks are PyTorch's.
 */
final class AssembledOps {
    private AssembledOps() {}

    static void register(Registrar r) {
        for (DispatchKey k : new DispatchKey[] {DispatchKey.SIPU, DispatchKey.CPU}) {
            r.register("aten::cat", k, AssembledOps::cat);
            r.register("aten::triu", k, AssembledOps::triu);
            r.register("aten::repeat_interleave.self_int", k, AssembledOps::repeatInterleave);
            r.register("aten::resize_", k, AssembledOps::resize);
        }
    }

    /** Legacy rule: 1-D tensors of size 0 are skipped whatever the other shapes. */
    private static Tensor cat(Call c) {
        List<Tensor> ts = c.tensors(0);
        if (ts.isEmpty()) throw c.error(0, "torch.cat(): expected a non-empty list of Tensors");
        TypePromotion.State promotion = TypePromotion.state();
        List<Tensor> used = new ArrayList<>();
        for (int i = 0; i < ts.size(); i++) {
            Tensor t = ts.get(i);
            promotion.tensor(t);
            if (t.dim() == 0) throw c.error(0, "zero-dimensional tensor (at position " + i + ") cannot be concatenated");
            if (t.dim() == 1 && t.sizes()[0] == 0) continue;
            used.add(t);
        }
        DType dtype = promotion.result();
        if (used.isEmpty()) return c.dispatcher().empty(new long[] {0}, dtype, c.device());
        Tensor ref = used.get(0);
        int dim = ReductionMeta.wrap(c, 1, c.i64(1), ref.dim());
        long[] shape = ref.sizes();
        long total = 0;
        for (int i = 0; i < used.size(); i++) {
            Tensor t = used.get(i);
            if (t.dim() != ref.dim()) {
                throw c.error(0, "Tensors must have same number of dimensions: got " + ref.dim() + " and " + t.dim());
            }
            for (int d = 0; d < shape.length; d++) {
                if (d != dim && t.sizes()[d] != shape[d]) {
                    throw c.error(0, "Sizes of tensors must match except in dimension " + dim + ". Expected size " + shape[d]
                            + " but got size " + t.sizes()[d] + " for tensor number " + ts.indexOf(t) + " in the list.");
                }
            }
            total += t.sizes()[dim];
        }
        shape[dim] = total;
        Tensor out = c.dispatcher().empty(shape, dtype, c.device());
        try {
            long at = 0;
            long[] strides = out.strides();
            for (Tensor t : used) {
                long[] part = t.sizes();
                try (Tensor slot = out.asStrided(part, strides, out.offset() + at * strides[dim])) {
                    c.ops().copy_(slot, t);
                }
                at += part[dim];
            }
            return out;
        } catch (RuntimeException e) {
            out.close();
            throw e;
        }
    }

    /** {@code triu(self, diagonal)}: element (i, j) of the last two dims kept where j - i >= diagonal, else 0. */
    private static Tensor triu(Call c) {
        Tensor self = c.tensor(0);
        if (self.dim() < 2) throw c.error(0, "triu: input tensor must have at least 2 dimensions");
        long rows = self.size(-2), cols = self.size(-1), diagonal = c.i64(1);
        try (Tensor j = c.ops().arange(Scalar.of(0L), Scalar.of(cols), Scalar.of(1L), DType.INT64, c.device());
             Tensor i = c.ops().arange(Scalar.of(diagonal), Scalar.of(rows + diagonal), Scalar.of(1L), DType.INT64, c.device());
             Tensor iCol = i.asStrided(new long[] {rows, 1}, new long[] {1, 0}, i.offset());
             Tensor keep = (Tensor) c.dispatcher().call("aten::ge.Tensor", j, iCol);
             Tensor zero = c.ops().zeros(new long[0], self.dtype(), c.device())) {
            return (Tensor) c.dispatcher().call("aten::where.self", keep, self, zero);
        }
    }

    /** {@code repeat_interleave(self, repeats, dim?)}: each slice along dim repeated; without a dim, of the flattened tensor. */
    private static Tensor repeatInterleave(Call c) {
        Tensor self = c.tensor(0);
        long repeats = c.i64(1);
        if (repeats < 0) throw c.error(1, "repeats can not be negative");
        Long dimArg = c.optI64(2);
        Tensor input = dimArg == null ? c.ops().reshape(self, -1) : ViewOps.alias(self);
        try (input) {
            int dim = dimArg == null ? 0 : ReductionMeta.wrap(c, 2, dimArg, self.dim());
            if (input.dim() == 0) {
                try (Tensor one = input.asStrided(new long[] {1}, new long[] {1}, input.offset())) {
                    return repeat(c, one, 0, repeats);
                }
            }
            return repeat(c, input, dim, repeats);
        }
    }

    /** A view of t with a stride-0 dimension of size repeats after dim, copied out and merged into dim. */
    private static Tensor repeat(Call c, Tensor t, int dim, long repeats) {
        long[] sizes = t.sizes(), strides = t.strides();
        long[] es = new long[sizes.length + 1], est = new long[sizes.length + 1];
        for (int d = 0, e = 0; d < sizes.length; d++) {
            es[e] = sizes[d];
            est[e++] = strides[d];
            if (d == dim) {
                es[e] = repeats;
                est[e++] = 0;
            }
        }
        long[] shape = sizes.clone();
        shape[dim] *= repeats;
        Tensor out = c.dispatcher().empty(shape, t.dtype(), c.device());
        try (Tensor expanded = t.asStrided(es, est, t.offset());
             Tensor target = out.asStrided(es, Shapes.contiguousStrides(es), out.offset())) {
            c.ops().copy_(target, expanded);
            return out;
        } catch (RuntimeException e) {
            out.close();
            throw e;
        }
    }

    /**
     * {@code resize_(self, size)}: self becomes contiguous with the new sizes; when its storage is too
     * small it moves to a new one holding the old elements first (PyTorch keeps a resized storage's
     * contents). The elements beyond the old ones are uninitialized, as in PyTorch.
     */
    private static Tensor resize(Call c) {
        Tensor self = c.tensor(0);
        long[] sizes = c.ints(1);
        for (long s : sizes) {
            if (s < 0) throw c.error(1, "Trying to create tensor with negative dimension " + s + ": " + Arrays.toString(sizes));
        }
        MemoryFormat format = c.arg(2) == null ? MemoryFormat.CONTIGUOUS_FORMAT : c.memoryFormat(2);
        if (format != MemoryFormat.CONTIGUOUS_FORMAT && format != MemoryFormat.PRESERVE_FORMAT) {
            throw c.error(2, "resize_ supports the contiguous memory format only, got " + format);
        }
        if (format == MemoryFormat.PRESERVE_FORMAT) throw c.error(2, "preserve memory format is unsupported by resize_");
        long item = self.dtype().itemSize();
        long numel = Shapes.numel(sizes);
        long capacity = self.storage().byteSize() / item;
        if (Math.addExact(self.offset(), numel) <= capacity) {
            self.resize(sizes, null);
            return self;
        }
        try (Tensor fresh = c.dispatcher().empty(new long[] {numel}, self.dtype(), c.device())) {
            long keep = Math.min(capacity - self.offset(), numel);
            if (keep > 0) {
                try (Tensor from = self.asStrided(new long[] {keep}, new long[] {1}, self.offset());
                     Tensor to = fresh.asStrided(new long[] {keep}, new long[] {1}, 0)) {
                    c.ops().copy_(to, from);
                }
            }
            self.resize(sizes, fresh);
        }
        return self;
    }
}
