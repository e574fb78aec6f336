package dev.sipu.sipu.kernels;

import dev.sipu.api.Tensor;
import dev.sipu.dispatch.Call;
import dev.sipu.dispatch.meta.ReductionMeta;
import dev.sipu.dispatch.meta.RowViews;
import dev.sipu.dispatch.spi.Registrar;
import dev.sipu.ffm.gen.SipuKernels;
import dev.sipu.sipu.Native;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.List;
import java.util.function.Function;

import static dev.sipu.dispatch.DispatchKey.SIPU;
import static dev.sipu.sipu.kernels.ElementwiseKernels.desc;

/** Reductions, softmax and cumsum on SIPU: the shared meta turns each into rows, C reduces the rows. */
final class ReductionKernels {
    private ReductionKernels() {}

    static void register(Registrar r) {
        r.register("aten::sum.dim_IntList", SIPU, c -> reduce(c, ReductionMeta::sum));
        r.register("aten::sum.IntList_out", SIPU, c -> {
            Tensor result = reduce(c, ReductionMeta::sumOut);
            try (result) {
                c.dispatcher().call("aten::copy_", c.tensor(4), result);
            }
            return c.tensor(4);
        });
        r.register("aten::mean.dim", SIPU, c -> reduce(c, ReductionMeta::mean));
        r.register("aten::amax", SIPU, c -> reduce(c, ReductionMeta::amax));
        r.register("aten::max", SIPU, c -> reduce(c, ReductionMeta::maxAll));
        r.register("aten::argmax", SIPU, c -> reduce(c, ReductionMeta::argmax));
        r.register("aten::any", SIPU, c -> reduce(c, ReductionMeta::any));
        r.register("aten::any.dim", SIPU, c -> reduce(c, ReductionMeta::any));
        r.register("aten::max.dim", SIPU, c -> {
            try (ReductionMeta m = ReductionMeta.maxDim(c)) {
                run(c, m);
                return List.of(m.take(0), m.take(1));
            }
        });
        r.register("aten::_softmax", SIPU, c -> softmax(c, 0));
        r.register("aten::_log_softmax", SIPU, c -> softmax(c, 1));
        r.register("aten::cumsum", SIPU, c -> alongDim(c, ReductionMeta.cumsum(c),
                (a, d) -> SipuKernels.sipu_cumsum_rows(d.out(), d.in())));
    }

    private static Tensor reduce(Call c, Function<Call, ReductionMeta> meta) {
        try (ReductionMeta m = meta.apply(c)) {
            run(c, m);
            return m.take(0);
        }
    }

    private static void run(Call c, ReductionMeta m) {
        int op = switch (m.kind()) {
            case SUM -> SipuKernels.SIPU_REDUCE_SUM();
            case MEAN -> SipuKernels.SIPU_REDUCE_MEAN();
            case AMAX -> SipuKernels.SIPU_REDUCE_AMAX();
            case MAX -> SipuKernels.SIPU_REDUCE_MAX();
            case ARGMAX -> SipuKernels.SIPU_REDUCE_ARGMAX();
            case ANY -> SipuKernels.SIPU_REDUCE_ANY();
        };
        try (RowViews rows = m.rows(c); Arena a = Arena.ofConfined()) {
            for (RowViews.Block b : rows.blocks()) {
                MemorySegment indices = b.outs().size() > 1 ? desc(a, c, b.outs().get(1), "indices") : MemorySegment.NULL;
                Native.check(c.op(), SipuKernels.sipu_reduce_rows(op, desc(a, c, b.outs().get(0), "out"), indices,
                        desc(a, c, b.in(), "self")));
            }
        }
    }

    private static Tensor softmax(Call c, int log) {
        return alongDim(c, ReductionMeta.softmax(c), (a, d) -> SipuKernels.sipu_softmax_rows(d.out(), d.in(), log));
    }

    private record Descs(MemorySegment in, MemorySegment out) {}

    private interface RowsKernel {
        int run(Arena a, Descs d);
    }

    private static Tensor alongDim(Call c, Tensor out, RowsKernel kernel) {
        try (RowViews rows = ReductionMeta.alongDim(c, out); Arena a = Arena.ofConfined()) {
            for (RowViews.Block b : rows.blocks()) {
                Native.check(c.op(), kernel.run(a, new Descs(desc(a, c, b.in(), "self"), desc(a, c, b.outs().get(0), "out"))));
            }
            return out;
        } catch (RuntimeException e) {
            out.close();
            throw e;
        }
    }
}
