package dev.sipu.sipu.kernels;

import dev.sipu.api.NativeException;
import dev.sipu.api.Tensor;
import dev.sipu.dispatch.Call;
import dev.sipu.dispatch.meta.IndexMeta;
import dev.sipu.dispatch.spi.Registrar;
import dev.sipu.ffm.gen.SipuKernels;
import dev.sipu.sipu.Native;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.List;
import java.util.function.Function;

import static dev.sipu.dispatch.DispatchKey.SIPU;
import static dev.sipu.sipu.kernels.ElementwiseKernels.desc;

/**
 * index, index_select, gather, scatter_ and index_put_ on SIPU: the shared {@link IndexMeta} plan,
 * then C's one gather or one scatter, which checks every index before the first store.
 */
final class IndexKernels {
    private IndexKernels() {}

    static void register(Registrar r) {
        r.register("aten::index_select", SIPU, c -> gather(c, IndexMeta::indexSelect, 2));
        r.register("aten::gather", SIPU, c -> gather(c, IndexMeta::gather, 2));
        r.register("aten::index.Tensor", SIPU, c -> gather(c, IndexMeta::index, 1));
        r.register("aten::scatter_.src", SIPU, c -> scatter(c, IndexMeta.scatter(c), false, 2));
        r.register("aten::scatter_.value", SIPU, c -> scatter(c, IndexMeta.scatter(c), false, 2));
        r.register("aten::_index_put_impl_", SIPU, c -> scatter(c, IndexMeta.indexPut(c), c.bool(3), 1));
    }

    private static Tensor gather(Call c, Function<Call, IndexMeta.Plan> meta, int indexArg) {
        try (IndexMeta.Plan p = meta.apply(c)) {
            Tensor out = c.dispatcher().empty(p.shape(), c.tensor(0).dtype(), c.device());
            try (Arena a = Arena.ofConfined()) {
                if (p.numel() > 0) {
                    run(c, indexArg, SipuKernels.sipu_index_gather(desc(a, c, out, "out"), desc(a, c, p.base(), "self"),
                            p.indices().size(), descs(a, c, p.indices()), a.allocateFrom(ValueLayout.JAVA_LONG, p.sizes()),
                            a.allocateFrom(ValueLayout.JAVA_LONG, p.strides()), p.wrapNegative() ? 1 : 0));
                }
                return out;
            } catch (RuntimeException e) {
                out.close();
                throw e;
            }
        }
    }

    private static Tensor scatter(Call c, IndexMeta.Plan p, boolean accumulate, int indexArg) {
        try (p; Arena a = Arena.ofConfined()) {
            List<Tensor> indices = IndexMeta.scatterIndices(p);
            if (p.numel() > 0) {
                run(c, indexArg, SipuKernels.sipu_index_scatter(desc(a, c, p.base(), "self"), desc(a, c, IndexMeta.values(p), "values"),
                        indices.size(), descs(a, c, indices), a.allocateFrom(ValueLayout.JAVA_LONG, p.sizes()),
                        a.allocateFrom(ValueLayout.JAVA_LONG, p.strides()), p.wrapNegative() ? 1 : 0, accumulate ? 1 : 0));
            }
            return c.tensor(0);
        }
    }

    private static MemorySegment descs(Arena a, Call c, List<Tensor> ts) {
        MemorySegment arr = a.allocate(ValueLayout.ADDRESS, ts.size());
        for (int i = 0; i < ts.size(); i++) arr.setAtIndex(ValueLayout.ADDRESS, i, desc(a, c, ts.get(i), "indices"));
        return arr;
    }

    /** A bad index value is the caller's error: reported against the index argument. */
    private static void run(Call c, int indexArg, int status) {
        try {
            Native.check(c.op(), status);
        } catch (NativeException e) {
            if (status == SipuKernels.SIPU_ERR_INDEX_OUT_OF_RANGE()) throw c.error(indexArg, Native.lastError());
            throw e;
        }
    }
}
