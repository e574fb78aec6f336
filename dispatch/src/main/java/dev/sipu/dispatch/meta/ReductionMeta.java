package dev.sipu.dispatch.meta;

import dev.sipu.api.DType;
import dev.sipu.api.Shapes;
import dev.sipu.api.Tensor;
import dev.sipu.dispatch.Call;

import java.util.Arrays;
import java.util.List;

/**
 * The reductions' rules, written once for every device: which dims, the output shape (keepdim) and
 * dtype, PyTorch's errors, and the new outputs. A device kernel then reduces the rows of
 * {@link #rows} ({@link RowViews}).
 */
public final class ReductionMeta implements AutoCloseable {
    /** What a kernel computes per row. */
    public enum Kind { SUM, MEAN, AMAX, MAX, ARGMAX, ANY }

    private final Kind kind;
    private final Tensor self;
    private final boolean[] reduced;
    private final List<Tensor> outputs;
    private boolean taken;

    private ReductionMeta(Kind kind, Tensor self, boolean[] reduced, List<Tensor> outputs) {
        this.kind = kind;
        this.self = self;
        this.reduced = reduced;
        this.outputs = outputs;
    }

    public Kind kind() { return kind; }

    /** The new outputs: the values, and for {@code max.dim} the int64 indices after them. */
    public List<Tensor> outputs() { return outputs; }

    /** The input's rows; the caller closes the views. */
    public RowViews rows(Call c) {
        return RowViews.of(c, self, reduced, false, outputs);
    }

    public Tensor take(int i) {
        taken = true;
        return outputs.get(i);
    }

    @Override
    public void close() {
        if (!taken) outputs.forEach(Tensor::close);
    }

    // ---- the ops ------------------------------------------------------------------------------

    /** {@code sum.dim_IntList(self, dim?, keepdim, *, dtype?)}: integral and bool inputs sum to int64. */
    public static ReductionMeta sum(Call c) {
        Tensor self = c.tensor(0);
        DType dtype = c.arg(3) != null ? c.dtype(3) : self.dtype().isFloatingPoint() ? self.dtype() : DType.INT64;
        return of(c, Kind.SUM, self, dims(c, 1, self, true), c.bool(2), dtype);
    }

    /**
     * {@code sum.IntList_out(..., out)}: reduced into a new tensor of out's dtype (a given dtype must
     * match it) and out's shape checked; the kernel then copies the result into out.
     */
    public static ReductionMeta sumOut(Call c) {
        Tensor self = c.tensor(0), out = c.tensor(4);
        if (c.arg(3) != null && c.dtype(3) != out.dtype()) {
            throw c.error(4, "Expected out tensor to have dtype " + c.dtype(3) + ", but got " + out.dtype() + " instead");
        }
        boolean[] r = dims(c, 1, self, true);
        long[] shape = outShape(self, r, c.bool(2));
        if (!Arrays.equals(shape, out.sizes())) {
            throw c.error(4, "out has shape " + Arrays.toString(out.sizes()) + ", the result has shape " + Arrays.toString(shape));
        }
        return of(c, Kind.SUM, self, r, c.bool(2), out.dtype());
    }

    /**
     * {@code _softmax/_log_softmax(self, dim, half_to_float)}: a new output of self's shape (fp32 when
     * half_to_float, which only fp16 and bf16 inputs allow), computed along {@code dim}.
     */
    public static Tensor softmax(Call c) {
        Tensor self = c.tensor(0);
        wrap(c, 1, c.i64(1), self.dim());
        DType t = self.dtype();
        if (!t.isFloatingPoint() || t.isFloat8()) throw c.error(0, "\"softmax_kernel_impl\" not implemented for '" + t + "'");
        boolean halfToFloat = c.bool(2);
        if (halfToFloat && t != DType.FLOAT16 && t != DType.BFLOAT16) {
            throw c.error(2, "conversion is supported for Half and BFloat16 inputs only, got " + t);
        }
        return c.dispatcher().empty(self.sizes(), halfToFloat ? DType.FLOAT32 : t, c.device());
    }

    /** {@code cumsum(self, dim, *, dtype?)}: integral and bool inputs sum to int64 unless a dtype is given. */
    public static Tensor cumsum(Call c) {
        Tensor self = c.tensor(0);
        wrap(c, 1, c.i64(1), self.dim());
        DType dtype = c.arg(2) != null ? c.dtype(2) : self.dtype().isFloatingPoint() ? self.dtype() : DType.INT64;
        if (dtype.isFloat8() || self.dtype().isFloat8()) throw c.error(0, "\"cumsum\" not implemented for '" + self.dtype() + "'");
        return c.dispatcher().empty(self.sizes(), dtype, c.device());
    }

    /** The rows of a same-shape op along argument 1's dim ({@code softmax}, {@code cumsum}); the caller closes them. */
    public static RowViews alongDim(Call c, Tensor out) {
        return RowViews.of(c, c.tensor(0), dim(c, 1, c.tensor(0)), true, List.of(out));
    }

    /** {@code mean.dim(self, dim?, keepdim, *, dtype?)}: floating results only. */
    public static ReductionMeta mean(Call c) {
        Tensor self = c.tensor(0);
        DType dtype = c.arg(3) != null ? c.dtype(3) : self.dtype();
        if (!dtype.isFloatingPoint()) {
            throw c.error(0, "mean(): could not infer output dtype. Input dtype must be either a floating point or complex dtype. Got: "
                    + dtype);
        }
        return of(c, Kind.MEAN, self, dims(c, 1, self, true), c.bool(2), dtype);
    }

    /** {@code amax(self, dim=[], keepdim)}: an empty dim list reduces every dim; NaN propagates. */
    public static ReductionMeta amax(Call c) {
        Tensor self = c.tensor(0);
        boolean[] r = dims(c, 1, self, true);
        nonEmpty(c, "amax", self, r);
        return of(c, Kind.AMAX, self, r, c.bool(2), self.dtype());
    }

    /** {@code max(self)}: the maximum of every element, 0-dim. */
    public static ReductionMeta maxAll(Call c) {
        Tensor self = c.tensor(0);
        if (self.numel() == 0) {
            throw c.error(0, "max(): Expected reduction dim to be specified for input.numel() == 0. "
                    + "Specify the reduction dim with the 'dim' argument.");
        }
        return of(c, Kind.AMAX, self, all(self), false, self.dtype());
    }

    /** {@code max.dim(self, dim, keepdim)}: values and int64 indices (the first maximum, the first NaN). */
    public static ReductionMeta maxDim(Call c) {
        Tensor self = c.tensor(0);
        boolean[] r = dim(c, 1, self);
        nonEmpty(c, "max", self, r);
        long[] shape = outShape(self, r, c.bool(2));
        Tensor values = c.dispatcher().empty(shape, self.dtype(), c.device());
        Tensor indices;
        try {
            indices = c.dispatcher().empty(shape, DType.INT64, c.device());
        } catch (RuntimeException e) {
            values.close();
            throw e;
        }
        return new ReductionMeta(Kind.MAX, self, r, List.of(values, indices));
    }

    /** {@code argmax(self, dim?, keepdim)}: without a dim, the index into the flattened tensor. */
    public static ReductionMeta argmax(Call c) {
        Tensor self = c.tensor(0);
        boolean[] r = c.arg(1) == null ? all(self) : dim(c, 1, self);
        nonEmpty(c, "argmax", self, r);
        return of(c, Kind.ARGMAX, self, r, c.bool(2), DType.INT64);
    }

    /** {@code any(self)} and {@code any.dim(self, dim, keepdim)}: bool, or uint8 for a uint8 input. */
    public static ReductionMeta any(Call c) {
        Tensor self = c.tensor(0);
        boolean[] r = c.size() > 1 ? dim(c, 1, self) : all(self);
        boolean keepdim = c.size() > 2 && c.bool(2);
        return of(c, Kind.ANY, self, r, keepdim, self.dtype() == DType.UINT8 ? DType.UINT8 : DType.BOOL);
    }

    // ---- rules --------------------------------------------------------------------------------

    private static ReductionMeta of(Call c, Kind kind, Tensor self, boolean[] reduced, boolean keepdim, DType dtype) {
        Tensor out = c.dispatcher().empty(outShape(self, reduced, keepdim), dtype, c.device());
        return new ReductionMeta(kind, self, reduced, List.of(out));
    }

    /** The dims of argument {@code arg} (an int list or None) as flags; None and [] mean every dim when {@code emptyIsAll}. */
    public static boolean[] dims(Call c, int arg, Tensor self, boolean emptyIsAll) {
        long[] dims = (long[]) c.arg(arg);
        if (dims == null || (dims.length == 0 && emptyIsAll)) return all(self);
        boolean[] r = new boolean[Math.max(self.dim(), 1)];
        for (long d : dims) {
            int w = wrap(c, arg, d, self.dim());
            if (r[w]) throw c.error(arg, "dim " + w + " appears multiple times in the list of dims");
            r[w] = true;
        }
        return self.dim() == 0 ? new boolean[0] : r;
    }

    /** A single dim argument as flags. */
    public static boolean[] dim(Call c, int arg, Tensor self) {
        int w = wrap(c, arg, c.i64(arg), self.dim());
        boolean[] r = new boolean[self.dim()];
        if (self.dim() > 0) r[w] = true;
        return r;
    }

    /** A possibly negative dim wrapped into range, or PyTorch's IndexError naming the argument. */
    public static int wrap(Call c, int arg, long dim, int rank) {
        int r = Math.max(rank, 1);
        if (dim < -r || dim >= r) {
            throw c.error(arg, "Dimension out of range (expected to be in range of [" + (-r) + ", " + (r - 1) + "], but got " + dim + ")");
        }
        return (int) (dim < 0 ? dim + r : dim);
    }

    private static boolean[] all(Tensor self) {
        boolean[] r = new boolean[self.dim()];
        Arrays.fill(r, true);
        return r;
    }

    /** The kept dims, with reduced ones as 1 when {@code keepdim}. */
    public static long[] outShape(Tensor self, boolean[] reduced, boolean keepdim) {
        long[] sizes = self.sizes();
        return Arrays.stream(range(sizes.length)).filter(d -> keepdim || !reduced[d])
                .mapToLong(d -> reduced[d] ? 1 : sizes[d]).toArray();
    }

    private static int[] range(int n) {
        int[] r = new int[n];
        for (int i = 0; i < n; i++) r[i] = i;
        return r;
    }

    private static void nonEmpty(Call c, String name, Tensor self, boolean[] reduced) {
        long[] sizes = self.sizes();
        for (int d = 0; d < sizes.length; d++) {
            if (reduced[d] && sizes[d] == 0) {
                throw c.error(0, name + "(): Expected reduction dim " + d + " to have non-zero size.");
            }
        }
        if (self.dim() == 0 && Shapes.numel(sizes) == 0) throw c.error(0, name + "(): Expected a non-empty input.");
    }
}
