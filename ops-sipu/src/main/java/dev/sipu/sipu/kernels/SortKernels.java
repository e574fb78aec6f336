package dev.sipu.sipu.kernels;

import dev.sipu.api.DType;
import dev.sipu.api.Tensor;
import dev.sipu.dispatch.Call;
import dev.sipu.dispatch.meta.SortMeta;
import dev.sipu.dispatch.spi.Registrar;
import dev.sipu.ffm.gen.SipuKernels;
import dev.sipu.sipu.Native;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.List;

import static dev.sipu.dispatch.DispatchKey.SIPU;
import static dev.sipu.sipu.kernels.ElementwiseKernels.desc;

/** sort, topk, nonzero, bincount, isin and exponential_ on SIPU: the shared SortMeta rules, C kernels of sort.c. */
final class SortKernels {
    private SortKernels() {}

    static void register(Registrar r) {
        r.register("aten::sort", SIPU, SortKernels::sort);
        r.register("aten::sort.stable", SIPU, SortKernels::sort);
        r.register("aten::topk", SIPU, c -> {
            try (SortMeta.Rows rows = SortMeta.topk(c); Arena a = Arena.ofConfined()) {
                Native.check(c.op(), SipuKernels.sipu_topk_rows(desc(a, c, rows.values(), "values"),
                        desc(a, c, rows.indices(), "indices"), desc(a, c, rows.in(), "self"), c.i64(1), c.bool(3) ? 1 : 0));
                return rows.take();
            }
        });
        r.register("aten::nonzero", SIPU, SortKernels::nonzero);
        r.register("aten::bincount", SIPU, SortKernels::bincount);
        r.register("aten::isin.Tensor_Tensor", SIPU, c -> {
            try (SortMeta.IsIn in = SortMeta.isin(c); Arena a = Arena.ofConfined()) {
                Tensor out = c.dispatcher().empty(in.elements().sizes(), DType.BOOL, c.device());
                try {
                    Native.check(c.op(), SipuKernels.sipu_isin(desc(a, c, out, "out"), desc(a, c, in.elements(), "elements"),
                            desc(a, c, in.test(), "test_elements"), in.invert() ? 1 : 0));
                    return out;
                } catch (RuntimeException e) {
                    out.close();
                    throw e;
                }
            }
        });
        r.register("aten::exponential_", SIPU, c -> {
            SortMeta.Draws d = SortMeta.exponential(c);
            try (Arena a = Arena.ofConfined()) {
                Native.check(c.op(), SipuKernels.sipu_exponential(Native.desc(a, c, 0, c.tensor(0)), d.lambd(), d.seed(), d.offset()));
            }
            return c.tensor(0);
        });
    }

    private static List<Tensor> sort(Call c) {
        try (SortMeta.Rows rows = SortMeta.sort(c); Arena a = Arena.ofConfined()) {
            Native.check(c.op(), SipuKernels.sipu_sort_rows(desc(a, c, rows.values(), "values"), desc(a, c, rows.indices(), "indices"),
                    desc(a, c, rows.in(), "self"), SortMeta.descending(c) ? 1 : 0));
            return rows.take();
        }
    }

    private static Tensor nonzero(Call c) {
        Tensor self = c.tensor(0);
        try (Arena a = Arena.ofConfined()) {
            MemorySegment in = Native.desc(a, c, 0, self), count = a.allocate(ValueLayout.JAVA_LONG);
            Native.check(c.op(), SipuKernels.sipu_count_nonzero(in, count));
            Tensor out = c.dispatcher().empty(new long[] {count.get(ValueLayout.JAVA_LONG, 0), self.dim()}, DType.INT64, c.device());
            try {
                Native.check(c.op(), SipuKernels.sipu_nonzero(desc(a, c, out, "out"), in));
                return out;
            } catch (RuntimeException e) {
                out.close();
                throw e;
            }
        }
    }

    private static Tensor bincount(Call c) {
        SortMeta.Bincount b = SortMeta.bincount(c);
        try (Arena a = Arena.ofConfined()) {
            MemorySegment in = Native.desc(a, c, 0, b.self()), range = a.allocate(ValueLayout.JAVA_LONG, 2);
            Native.check(c.op(), SipuKernels.sipu_int_minmax(in, range, range.asSlice(8)));
            long bins = SortMeta.bins(c, b, b.self().numel(), range.getAtIndex(ValueLayout.JAVA_LONG, 0),
                    range.getAtIndex(ValueLayout.JAVA_LONG, 1));
            Tensor out = c.dispatcher().empty(new long[] {bins}, b.outType(), c.device());
            try {
                MemorySegment w = b.weights() == null ? MemorySegment.NULL : Native.desc(a, c, 1, b.weights());
                Native.check(c.op(), SipuKernels.sipu_bincount(desc(a, c, out, "out"), in, w));
                return out;
            } catch (RuntimeException e) {
                out.close();
                throw e;
            }
        }
    }
}
