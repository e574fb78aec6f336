package dev.sipu.dispatch.composite;

import dev.sipu.api.Shapes;
import dev.sipu.api.Tensor;
import dev.sipu.dispatch.Call;
import dev.sipu.dispatch.DispatchKey;
import dev.sipu.dispatch.Kernel;
import dev.sipu.dispatch.spi.Registrar;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * Views: new sizes, strides and offset over the same storage, never a copy (except {@code reshape}
 * and {@code flatten}, which copy when no view exists, as in PyTorch). They touch no device memory,
 * so one implementation serves every device. {@code view}, {@code _reshape_alias} and
 * {@code as_strided} are device kernels in PyTorch and are registered under each device key; the
 * rest are PyTorch composites.
 */
final class ViewOps {
    private ViewOps() {}

    static void register(Registrar r) {
        for (DispatchKey k : new DispatchKey[] {DispatchKey.SIPU, DispatchKey.CPU}) {
            r.register("aten::view", k, ViewOps::view);
            r.register("aten::_reshape_alias", k, c -> asStrided(c, c.tensor(0), c.ints(1), c.ints(2), c.tensor(0).offset()));
            r.register("aten::as_strided", k, c -> {
                Long off = c.optI64(3);
                return asStrided(c, c.tensor(0), c.ints(1), c.ints(2), off == null ? c.tensor(0).offset() : off);
            });
        }
        composite(r, "aten::_unsafe_view", ViewOps::view);
        composite(r, "aten::alias", c -> alias(c.tensor(0)));
        composite(r, "aten::detach", c -> alias(c.tensor(0)));
        composite(r, "aten::lift_fresh", c -> alias(c.tensor(0)));
        composite(r, "aten::detach_", c -> c.tensor(0));
        composite(r, "aten::expand", ViewOps::expand);
        composite(r, "aten::permute", ViewOps::permute);
        composite(r, "aten::transpose.int", c -> transpose(c, c.tensor(0), c.i64(1), c.i64(2)));
        composite(r, "aten::t", ViewOps::t);
        composite(r, "aten::select.int", ViewOps::select);
        composite(r, "aten::slice.Tensor", ViewOps::slice);
        composite(r, "aten::narrow", ViewOps::narrow);
        composite(r, "aten::squeeze.dim", ViewOps::squeeze);
        composite(r, "aten::unsqueeze", ViewOps::unsqueeze);
        composite(r, "aten::flatten.using_ints", ViewOps::flatten);
        composite(r, "aten::reshape", c -> reshape(c, c.tensor(0), c.ints(1)));
        composite(r, "aten::split.Tensor", c -> split(c, c.tensor(0), c.i64(1), c.i64(2)));
        composite(r, "aten::chunk", ViewOps::chunk);
        composite(r, "aten::split_with_sizes", ViewOps::splitWithSizes);
    }

    private static void composite(Registrar r, String op, Kernel k) { r.register(op, DispatchKey.COMPOSITE, k); }

    static Tensor alias(Tensor t) { return t.asStrided(t.sizes(), t.strides(), t.offset()); }

    private static Tensor asStrided(Call c, Tensor t, long[] sizes, long[] strides, long offset) {
        if (sizes.length != strides.length) {
            throw c.error(1, "mismatch in length of strides and shape (" + sizes.length + " vs " + strides.length + ")");
        }
        for (long s : sizes) if (s < 0) throw c.error(1, "negative size " + s + " in " + Shapes.str(sizes));
        for (long s : strides) if (s < 0) throw c.error(2, "negative stride " + s + " in " + Shapes.str(strides));
        if (offset < 0) throw c.error(3, "negative storage offset " + offset);
        try {
            return t.asStrided(sizes, strides, offset);
        } catch (IllegalArgumentException e) {
            throw c.error(1, e.getMessage());
        }
    }

    /** Replaces a single -1 by the size that keeps numel; checks the product. */
    static long[] inferSize(Call c, int arg, long[] shape, long numel) {
        long[] out = shape.clone();
        int infer = -1;
        long known = 1;
        for (int i = 0; i < out.length; i++) {
            if (out[i] == -1) {
                if (infer >= 0) throw c.error(arg, "only one dimension can be inferred");
                infer = i;
            } else if (out[i] < 0) {
                throw c.error(arg, "invalid shape dimension " + out[i]);
            } else {
                known = Math.multiplyExact(known, out[i]);
            }
        }
        if (infer >= 0) {
            if (known == 0 || numel % known != 0) {
                throw c.error(arg, "shape '" + Arrays.toString(shape) + "' is invalid for input of size " + numel);
            }
            out[infer] = numel / known;
        } else if (known != numel) {
            throw c.error(arg, "shape '" + Arrays.toString(shape) + "' is invalid for input of size " + numel);
        }
        return out;
    }

    /**
     * Strides that view (oldSizes, oldStrides) as newSizes without copying, or null when impossible
     * (PyTorch's computeStride: dimensions may be split or merged only within contiguous chunks).
     */
    static long[] viewStrides(long[] oldSizes, long[] oldStrides, long[] newSizes) {
        long[] ns = new long[newSizes.length];
        if (oldSizes.length == 0) {
            Arrays.fill(ns, 1);
            return ns;
        }
        long numel = Shapes.numel(oldSizes);
        if (numel == 0 && Arrays.equals(oldSizes, newSizes)) return oldStrides.clone();
        if (numel == 0) return Shapes.contiguousStrides(newSizes);
        int viewD = newSizes.length - 1;
        long chunkBase = oldStrides[oldStrides.length - 1];
        long tensorNumel = 1, viewNumel = 1;
        for (int td = oldSizes.length - 1; td >= 0; td--) {
            tensorNumel *= oldSizes[td];
            if (td == 0 || (oldSizes[td - 1] != 1 && oldStrides[td - 1] != tensorNumel * chunkBase)) {
                while (viewD >= 0 && (viewNumel < tensorNumel || newSizes[viewD] == 1)) {
                    ns[viewD] = viewNumel * chunkBase;
                    viewNumel *= newSizes[viewD];
                    viewD--;
                }
                if (viewNumel != tensorNumel) return null;
                if (td > 0) {
                    chunkBase = oldStrides[td - 1];
                    tensorNumel = 1;
                    viewNumel = 1;
                }
            }
        }
        return viewD == -1 ? ns : null;
    }

    private static Tensor view(Call c) {
        Tensor t = c.tensor(0);
        long[] sizes = inferSize(c, 1, c.ints(1), t.numel());
        long[] strides = viewStrides(t.sizes(), t.strides(), sizes);
        if (strides == null) {
            throw c.error(1, "view size is not compatible with input tensor's size and stride (at least one dimension"
                    + " spans across two contiguous subspaces). Use .reshape(...) instead.");
        }
        return t.asStrided(sizes, strides, t.offset());
    }

    static Tensor reshape(Call c, Tensor t, long[] shape) {
        long[] sizes = inferSize(c, 1, shape, t.numel());
        long[] strides = viewStrides(t.sizes(), t.strides(), sizes);
        if (strides != null) return t.asStrided(sizes, strides, t.offset());
        try (Tensor copy = c.ops().contiguousCopy(t)) {
            return copy.asStrided(sizes, Shapes.contiguousStrides(sizes), 0);
        }
    }

    private static Tensor expand(Call c) {
        Tensor t = c.tensor(0);
        long[] target = c.ints(1);
        long[] sizes = t.sizes(), strides = t.strides();
        if (target.length < sizes.length) {
            throw c.error(1, "the number of sizes provided (" + target.length + ") must be greater or equal to the"
                    + " number of dimensions in the tensor (" + sizes.length + ")");
        }
        long[] outSizes = new long[target.length], outStrides = new long[target.length];
        int lead = target.length - sizes.length;
        for (int i = target.length - 1; i >= 0; i--) {
            long want = target[i];
            if (i < lead) {
                if (want < 0) throw c.error(1, "the expanded size (" + want + ") isn't allowed in a leading, non-existing dimension " + i);
                outSizes[i] = want;
                outStrides[i] = 0;
                continue;
            }
            long have = sizes[i - lead];
            if (want == -1) want = have;
            if (want < 0) throw c.error(1, "invalid expanded size " + want);
            if (have == want) {
                outSizes[i] = have;
                outStrides[i] = strides[i - lead];
            } else if (have == 1) {
                outSizes[i] = want;
                outStrides[i] = 0;
            } else {
                throw c.error(1, "the expanded size of the tensor (" + want + ") must match the existing size (" + have
                        + ") at non-singleton dimension " + i + ". Target sizes: " + Arrays.toString(target)
                        + ". Tensor sizes: " + Arrays.toString(sizes));
            }
        }
        return t.asStrided(outSizes, outStrides, t.offset());
    }

    private static Tensor permute(Call c) {
        Tensor t = c.tensor(0);
        long[] dims = c.ints(1);
        int n = t.dim();
        if (dims.length != n) {
            throw c.error(1, "number of dims don't match in permute (input has " + n + ", dims has " + dims.length + ")");
        }
        long[] sizes = t.sizes(), strides = t.strides();
        long[] os = new long[n], ot = new long[n];
        boolean[] seen = new boolean[n];
        for (int i = 0; i < n; i++) {
            int d = Shapes.wrapDim(c.op(), "dims", dims[i], n);
            if (seen[d]) throw c.error(1, "repeated dim " + d + " in permute " + Arrays.toString(dims));
            seen[d] = true;
            os[i] = sizes[d];
            ot[i] = strides[d];
        }
        return t.asStrided(os, ot, t.offset());
    }

    static Tensor transpose(Call c, Tensor t, long dim0, long dim1) {
        int n = t.dim();
        int a = Shapes.wrapDim(c.op(), "dim0", dim0, n), b = Shapes.wrapDim(c.op(), "dim1", dim1, n);
        long[] sizes = t.sizes(), strides = t.strides();
        if (n == 0) return alias(t);
        swap(sizes, a, b);
        swap(strides, a, b);
        return t.asStrided(sizes, strides, t.offset());
    }

    private static void swap(long[] x, int a, int b) {
        long tmp = x[a];
        x[a] = x[b];
        x[b] = tmp;
    }

    private static Tensor t(Call c) {
        Tensor t = c.tensor(0);
        if (t.dim() > 2) throw c.error(0, "t() expects a tensor with <= 2 dimensions, but self is " + t.dim() + "D");
        return t.dim() < 2 ? alias(t) : transpose(c, t, 0, 1);
    }

    private static Tensor select(Call c) {
        Tensor t = c.tensor(0);
        if (t.dim() == 0) throw c.error(0, "select() cannot be applied to a 0-dim tensor.");
        int d = Shapes.wrapDim(c.op(), "dim", c.i64(1), t.dim());
        long size = t.size(d), index = c.i64(2);
        if (index < -size || index >= size) {
            throw c.error(2, "select(): index " + index + " out of range for tensor of size " + Arrays.toString(t.sizes())
                    + " at dimension " + d);
        }
        if (index < 0) index += size;
        return t.asStrided(remove(t.sizes(), d), remove(t.strides(), d), t.offset() + index * t.stride(d));
    }

    private static long[] remove(long[] x, int d) {
        long[] out = new long[x.length - 1];
        System.arraycopy(x, 0, out, 0, d);
        System.arraycopy(x, d + 1, out, d, x.length - d - 1);
        return out;
    }

    private static long[] insert(long[] x, int d, long v) {
        long[] out = new long[x.length + 1];
        System.arraycopy(x, 0, out, 0, d);
        out[d] = v;
        System.arraycopy(x, d, out, d + 1, x.length - d);
        return out;
    }

    private static Tensor slice(Call c) {
        Tensor t = c.tensor(0);
        if (t.dim() == 0) throw c.error(0, "slice() cannot be applied to a 0-dim tensor.");
        int d = Shapes.wrapDim(c.op(), "dim", c.i64(1), t.dim());
        long step = c.i64(4);
        if (step <= 0) throw c.error(4, "slice step must be positive");
        long size = t.size(d);
        Long s0 = c.optI64(2), e0 = c.optI64(3);
        long start = s0 == null ? 0 : s0, end = e0 == null ? size : e0;
        if (start < 0) start += size;
        if (end < 0) end += size;
        start = Math.min(Math.max(start, 0), size);
        end = Math.min(Math.max(end, start), size);
        long len = (end - start + step - 1) / step;
        long[] sizes = t.sizes(), strides = t.strides();
        long offset = t.offset() + (len == 0 ? 0 : start * strides[d]);
        sizes[d] = len;
        strides[d] *= step;
        return t.asStrided(sizes, strides, offset);
    }

    private static Tensor narrow(Call c) {
        Tensor t = c.tensor(0);
        if (t.dim() == 0) throw c.error(0, "narrow() cannot be applied to a 0-dim tensor.");
        int d = Shapes.wrapDim(c.op(), "dim", c.i64(1), t.dim());
        long size = t.size(d), start = c.i64(2), length = c.i64(3);
        if (start < -size || start > size) throw c.error(2, "start out of range (expected to be in range of [" + (-size) + ", " + size + "], but got " + start + ")");
        if (start < 0) start += size;
        if (length < 0) throw c.error(3, "narrow(): length must be non-negative.");
        if (start + length > size) throw c.error(3, "start (" + start + ") + length (" + length + ") exceeds dimension size (" + size + ").");
        return narrowView(t, d, start, length);
    }

    static Tensor narrowView(Tensor t, int d, long start, long length) {
        long[] sizes = t.sizes();
        sizes[d] = length;
        return t.asStrided(sizes, t.strides(), t.offset() + (length == 0 ? 0 : start * t.stride(d)));
    }

    private static Tensor squeeze(Call c) {
        Tensor t = c.tensor(0);
        int d = Shapes.wrapDim(c.op(), "dim", c.i64(1), t.dim());
        if (t.dim() == 0 || t.size(d) != 1) return alias(t);
        return t.asStrided(remove(t.sizes(), d), remove(t.strides(), d), t.offset());
    }

    private static Tensor unsqueeze(Call c) {
        Tensor t = c.tensor(0);
        int d = Shapes.wrapDim(c.op(), "dim", c.i64(1), t.dim() + 1);
        long stride = d >= t.dim() ? 1 : t.size(d) * t.stride(d);
        return t.asStrided(insert(t.sizes(), d, 1), insert(t.strides(), d, stride), t.offset());
    }

    private static Tensor flatten(Call c) {
        Tensor t = c.tensor(0);
        if (t.dim() == 0) return reshape(c, t, new long[] {1});
        int s = Shapes.wrapDim(c.op(), "start_dim", c.i64(1), t.dim());
        int e = Shapes.wrapDim(c.op(), "end_dim", c.i64(2), t.dim());
        if (s > e) throw c.error(1, "flatten() has invalid args: start_dim cannot come after end_dim");
        if (s == e) return alias(t);
        long[] sizes = t.sizes();
        long[] shape = new long[sizes.length - (e - s)];
        long merged = 1;
        for (int i = s; i <= e; i++) merged *= sizes[i];
        for (int i = 0, j = 0; i < sizes.length; i++) {
            if (i < s || i > e) shape[j++] = sizes[i];
            else if (i == s) shape[j++] = merged;
        }
        return reshape(c, t, shape);
    }

    static List<Tensor> split(Call c, Tensor t, long splitSize, long dim) {
        if (t.dim() == 0) throw c.error(0, "split expects at least a 1-dimensional tensor");
        int d = Shapes.wrapDim(c.op(), "dim", dim, t.dim());
        if (splitSize < 0) throw c.error(1, "split expects split_size be non-negative, but got split_size=" + splitSize);
        long size = t.size(d);
        if (splitSize == 0 && size != 0) throw c.error(1, "split_size can only be 0 if dimension size is 0, but got dimension size of " + size);
        long n = splitSize == 0 ? 1 : Math.max((size + splitSize - 1) / splitSize, 1);
        List<Tensor> out = new ArrayList<>();
        for (long i = 0; i < n; i++) {
            long start = i * splitSize;
            out.add(narrowView(t, d, start, Math.min(splitSize, size - start)));
        }
        return List.copyOf(out);
    }

    private static List<Tensor> chunk(Call c) {
        Tensor t = c.tensor(0);
        long chunks = c.i64(1);
        if (chunks <= 0) throw c.error(1, "chunk expects `chunks` to be greater than 0, got: " + chunks);
        if (t.dim() == 0) throw c.error(0, "chunk expects at least a 1-dimensional tensor");
        int d = Shapes.wrapDim(c.op(), "dim", c.i64(2), t.dim());
        long size = t.size(d);
        return split(c, t, (size + chunks - 1) / chunks, d);
    }

    private static List<Tensor> splitWithSizes(Call c) {
        Tensor t = c.tensor(0);
        long[] parts = c.ints(1);
        if (t.dim() == 0) throw c.error(0, "split expects at least a 1-dimensional tensor");
        int d = Shapes.wrapDim(c.op(), "dim", c.i64(2), t.dim());
        long sum = 0;
        for (long p : parts) {
            if (p < 0) throw c.error(1, "split_with_sizes expects split_sizes have only non-negative entries, but got split_sizes=" + Arrays.toString(parts));
            sum += p;
        }
        if (sum != t.size(d)) {
            throw c.error(1, "split_with_sizes expects split_sizes to sum exactly to " + t.size(d) + " (input tensor's size at dimension "
                    + d + "), but got split_sizes=" + Arrays.toString(parts));
        }
        List<Tensor> out = new ArrayList<>();
        long start = 0;
        for (long p : parts) {
            out.add(narrowView(t, d, start, p));
            start += p;
        }
        return List.copyOf(out);
    }
}
