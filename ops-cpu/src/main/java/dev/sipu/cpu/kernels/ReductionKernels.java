package dev.sipu.cpu.kernels;

import dev.sipu.api.DType;
import dev.sipu.api.Elements;
import dev.sipu.api.Tensor;
import dev.sipu.cpu.iter.Parallel;
import dev.sipu.cpu.simd.Floats;
import dev.sipu.dispatch.Call;
import dev.sipu.dispatch.meta.ReductionMeta;
import dev.sipu.dispatch.meta.RowViews;
import dev.sipu.dispatch.meta.ScalarCast;
import dev.sipu.dispatch.spi.Registrar;

import java.lang.foreign.MemorySegment;
import java.util.List;
import java.util.function.Function;

import static dev.sipu.dispatch.DispatchKey.CPU;

/**
 * Reductions, softmax and cumsum: the shared meta turns each op into rows ({@link RowViews}); a
 * row of a float dtype is loaded into fp32 (fp64 stays double, integers long), reduced with fp32
 * accumulation as PyTorch's CPU kernels do, and stored. Rows are split across threads.
 */
public final class ReductionKernels {
    private ReductionKernels() {}

    public static void register(Registrar r) {
        r.register("aten::sum.dim_IntList", CPU, c -> reduce(c, ReductionMeta::sum));
        r.register("aten::sum.IntList_out", CPU, c -> {
            try (Tensor result = reduce(c, ReductionMeta::sumOut)) {
                c.dispatcher().call("aten::copy_", c.tensor(4), result);
            }
            return c.tensor(4);
        });
        r.register("aten::mean.dim", CPU, c -> reduce(c, ReductionMeta::mean));
        r.register("aten::amax", CPU, c -> reduce(c, ReductionMeta::amax));
        r.register("aten::max", CPU, c -> reduce(c, ReductionMeta::maxAll));
        r.register("aten::argmax", CPU, c -> reduce(c, ReductionMeta::argmax));
        r.register("aten::any", CPU, c -> reduce(c, ReductionMeta::any));
        r.register("aten::any.dim", CPU, c -> reduce(c, ReductionMeta::any));
        r.register("aten::max.dim", CPU, c -> {
            try (ReductionMeta m = ReductionMeta.maxDim(c)) {
                run(c, m);
                return List.of(m.take(0), m.take(1));
            }
        });
        r.register("aten::_softmax", CPU, c -> alongDim(c, ReductionMeta.softmax(c), false));
        r.register("aten::_log_softmax", CPU, c -> alongDim(c, ReductionMeta.softmax(c), true));
        r.register("aten::cumsum", CPU, c -> {
            Tensor out = ReductionMeta.cumsum(c);
            try (RowViews rows = ReductionMeta.alongDim(c, out)) {
                for (RowViews.Block b : rows.blocks()) forRows(b, new Cumsum(b));
                return out;
            } catch (RuntimeException e) {
                out.close();
                throw e;
            }
        });
    }

    private static Tensor reduce(Call c, Function<Call, ReductionMeta> meta) {
        try (ReductionMeta m = meta.apply(c)) {
            run(c, m);
            return m.take(0);
        }
    }

    private static void run(Call c, ReductionMeta m) {
        try (RowViews rows = m.rows(c)) {
            for (RowViews.Block b : rows.blocks()) forRows(b, new Reduce(m.kind(), b));
        }
    }

    private static Tensor alongDim(Call c, Tensor out, boolean log) {
        try (RowViews rows = ReductionMeta.alongDim(c, out)) {
            for (RowViews.Block b : rows.blocks()) forRows(b, new Softmax(b, log));
            return out;
        } catch (RuntimeException e) {
            out.close();
            throw e;
        }
    }

    /** What a row kernel needs: one call per row, with per-thread scratch made by {@link #scratch}. */
    private interface RowKernel {
        Object scratch();

        void row(long r, Object scratch);
    }

    private static void forRows(RowViews.Block b, RowKernel k) {
        long rows = b.in().sizes()[0], n = b.in().sizes()[1];
        if (rows == 0) return;
        int tasks = Parallel.tasks(rows * Math.max(n, 1));
        long per = (rows + tasks - 1) / tasks;
        Parallel.forEach(tasks, t -> {
            Object s = k.scratch();
            for (long r = t * per, end = Math.min(rows, (t + 1) * per); r < end; r++) k.row(r, s);
        });
    }

    /** A [R, N] operand: element (r, j) is at byte {@code base + r * rs + j * cs}. */
    private record Rows(MemorySegment mem, DType t, long base, long rs, long cs, int n) {
        static Rows of(Tensor v) {
            long item = v.dtype().itemSize();
            long[] st = v.strides();
            return new Rows(v.storage().memory(), v.dtype(), v.byteOffset(), st[0] * item, st.length > 1 ? st[1] * item : 0,
                    (int) (v.dim() > 1 ? v.sizes()[1] : 1));
        }

        long at(long r, long j) { return base + r * rs + j * cs; }

        boolean floats() { return t.isFloatingPoint() && t != DType.FLOAT64; }

        void load(long r, float[] row) { Floats.load(t, mem, at(r, 0), cs, row, 0, n); }

        double getDouble(long r, long j) { return Elements.getDouble(mem, at(r, j), t); }

        long getLong(long r, long j) { return Elements.getLong(mem, at(r, j), t); }

        void putDouble(long r, long j, double v) {
            if (t.isFloatingPoint() && t != DType.FLOAT64) Floats.storeOne(t, mem, at(r, j), (float) v);
            else Elements.putDouble(mem, at(r, j), t, v);
        }

        void putLong(long r, long j, long v) { Elements.putLong(mem, at(r, j), t, v); }
    }

    private static final class Reduce implements RowKernel {
        private final ReductionMeta.Kind kind;
        private final Rows in, out, idx;

        Reduce(ReductionMeta.Kind kind, RowViews.Block b) {
            this.kind = kind;
            this.in = Rows.of(b.in());
            this.out = Rows.of(b.outs().get(0));
            this.idx = b.outs().size() > 1 ? Rows.of(b.outs().get(1)) : null;
        }

        @Override
        public Object scratch() { return in.floats() ? new float[Math.max(in.n, 1)] : null; }

        @Override
        public void row(long r, Object scratch) {
            int n = in.n;
            switch (kind) {
                case SUM, MEAN -> {
                    if (in.t.isFloatingPoint() || out.t.isFloatingPoint()) {
                        double sum;
                        if (in.floats() && out.t != DType.FLOAT64) {
                            float[] x = (float[]) scratch;
                            in.load(r, x);
                            float s = 0;
                            for (int j = 0; j < n; j++) s += x[j];
                            sum = kind == ReductionMeta.Kind.MEAN ? s / (float) n : s;
                        } else {
                            double s = 0;
                            for (int j = 0; j < n; j++) s += in.getDouble(r, j);
                            sum = kind == ReductionMeta.Kind.MEAN ? s / n : s;
                        }
                        out.putDouble(r, 0, sum);
                    } else {
                        long s = 0;
                        for (int j = 0; j < n; j++) s += in.getLong(r, j);
                        out.putLong(r, 0, s);
                    }
                }
                case ANY -> {
                    boolean any = false;
                    for (int j = 0; j < n && !any; j++) any = in.t.isFloatingPoint() ? in.getDouble(r, j) != 0 : in.getLong(r, j) != 0;
                    out.putLong(r, 0, any ? 1 : 0);
                }
                default -> {
                    // the first maximum; the first NaN wins outright
                    int best = 0;
                    if (in.t.isFloatingPoint()) {
                        double bv = in.getDouble(r, 0);
                        for (int j = 1; j < n && !Double.isNaN(bv); j++) {
                            double v = in.getDouble(r, j);
                            if (Double.isNaN(v) || v > bv) {
                                bv = v;
                                best = j;
                            }
                        }
                        if (kind != ReductionMeta.Kind.ARGMAX) out.putDouble(r, 0, bv);
                    } else {
                        long bv = in.getLong(r, 0);
                        for (int j = 1; j < n; j++) {
                            long v = in.getLong(r, j);
                            if (v > bv) {
                                bv = v;
                                best = j;
                            }
                        }
                        if (kind != ReductionMeta.Kind.ARGMAX) out.putLong(r, 0, bv);
                    }
                    if (kind == ReductionMeta.Kind.ARGMAX) out.putLong(r, 0, best);
                    if (idx != null) idx.putLong(r, 0, best);
                }
            }
        }
    }

    /** max, exp(x - max) and its sum in fp32 (double for fp64), then scaled or logged. */
    private static final class Softmax implements RowKernel {
        private final Rows in, out;
        private final boolean log;

        Softmax(RowViews.Block b, boolean log) {
            this.in = Rows.of(b.in());
            this.out = Rows.of(b.outs().get(0));
            this.log = log;
        }

        @Override
        public Object scratch() { return new double[Math.max(in.n, 1)]; }

        @Override
        public void row(long r, Object scratch) {
            double[] x = (double[]) scratch;
            int n = in.n;
            boolean wide = in.t == DType.FLOAT64;
            double max = Double.NEGATIVE_INFINITY;
            for (int j = 0; j < n; j++) {
                x[j] = in.getDouble(r, j);
                if (x[j] > max || Double.isNaN(x[j])) max = x[j];
            }
            double sum = 0;
            float fsum = 0;
            for (int j = 0; j < n; j++) {
                if (wide) sum += Math.exp(x[j] - max);
                else fsum += (float) Math.exp((float) x[j] - (float) max);
            }
            if (!wide) sum = fsum;
            double lse = wide ? Math.log(sum) : (float) Math.log(sum);
            // PyTorch keeps a narrow log_softmax's row sum and its log in the output dtype (both rounded)
            if (log && (out.t == DType.FLOAT16 || out.t == DType.BFLOAT16)) {
                sum = ScalarCast.roundTo((float) sum, out.t);
                lse = ScalarCast.roundTo((float) Math.log(sum), out.t);
            }
            for (int j = 0; j < n; j++) {
                double v = x[j] - max;
                double y = wide ? (log ? v - lse : Math.exp(v) / sum)
                        : (log ? (float) v - (float) lse : (float) Math.exp((float) v) / (float) sum);
                out.putDouble(r, j, y);
            }
        }
    }

    /** Running sums in out's compute type: fp32 for the narrow floats, double for fp64, int64 for integers. */
    private static final class Cumsum implements RowKernel {
        private final Rows in, out;

        Cumsum(RowViews.Block b) {
            this.in = Rows.of(b.in());
            this.out = Rows.of(b.outs().get(0));
        }

        @Override
        public Object scratch() { return null; }

        @Override
        public void row(long r, Object scratch) {
            int n = in.n;
            if (out.t == DType.FLOAT64) {
                double s = 0;
                for (int j = 0; j < n; j++) out.putDouble(r, j, s += in.getDouble(r, j));
            } else if (out.t.isFloatingPoint()) {
                float s = 0;
                for (int j = 0; j < n; j++) out.putDouble(r, j, s += (float) in.getDouble(r, j));
            } else {
                long s = 0;
                for (int j = 0; j < n; j++) out.putLong(r, j, s += in.getLong(r, j));
            }
        }
    }
}
