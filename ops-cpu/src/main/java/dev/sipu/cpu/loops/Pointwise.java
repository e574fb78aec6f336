package dev.sipu.cpu.loops;

import dev.sipu.api.DType;
import dev.sipu.api.Elements;
import dev.sipu.api.Tensor;
import dev.sipu.cpu.iter.TensorIter;
import dev.sipu.cpu.simd.Floats;
import dev.sipu.dispatch.meta.ElementwiseMeta;
import dev.sipu.dispatch.meta.Overlap;
import dev.sipu.dispatch.meta.ScalarCast;

import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.List;

/**
 * Elementwise ops over the iteration core, by compute type ({@link ElementwiseMeta#computeDtype()}):
 * <ul>
 *   <li>fp32 (fp32, fp16, bf16 and fp8 results): each run is cut into tiles; every input tile is
 *       loaded as floats (vector conversions for contiguous fp32/bf16/fp16, a gather otherwise), the
 *       op's vector primitive computes the output tile, and the store rounds once to the output
 *       dtype. Every element, contiguous or strided, takes the same vector arithmetic.</li>
 *   <li>fp64: per element in double.</li>
 *   <li>int64 (integers and bool): per element in long, wrapping; the store narrows.</li>
 * </ul>
 * An input of another dtype than the common one is converted to it on load (a 0-dim fp32 operand of
 * a bf16 op is rounded to bf16 first), as PyTorch casts inputs to the common dtype.
 */
public final class Pointwise {
    private Pointwise() {}

    /** Elements per operand per step of the fp32 path: a few KB each, so tiles stay in L1. */
    static final int TILE = 1024;

    /** out = op(first input). A binary meta whose second operand the op has folded in (a scalar) works too. */
    public static void unary(ElementwiseMeta m, UnaryOp op) {
        try (Operands o = new Operands(m, 1)) {
            switch (m.computeDtype()) {
                case FLOAT32 -> o.floats((in, out, n) -> op.f32().apply(in[0], out, n));
                case FLOAT64 -> o.iter.forEach(() -> (data, off, st, n) -> {
                    for (long i = 0; i < n; i++) o.putDouble(data, off, st, i, op.f64().applyAsDouble(o.getDouble(1, data, off, st, i)));
                });
                default -> o.iter.forEach(() -> (data, off, st, n) -> {
                    for (long i = 0; i < n; i++) o.putLong(data, off, st, i, op.i64().applyAsLong(o.getLong(1, data, off, st, i)));
                });
            }
        }
    }

    /** out = op(first input, second input). */
    public static void binary(ElementwiseMeta m, BinaryOp op) {
        try (Operands o = new Operands(m, 2)) {
            switch (m.computeDtype()) {
                case FLOAT32 -> o.floats((in, out, n) -> op.f32().apply(in[0], in[1], out, n));
                case FLOAT64 -> o.iter.forEach(() -> (data, off, st, n) -> {
                    for (long i = 0; i < n; i++) {
                        o.putDouble(data, off, st, i, op.f64().applyAsDouble(o.getDouble(1, data, off, st, i), o.getDouble(2, data, off, st, i)));
                    }
                });
                default -> o.iter.forEach(() -> (data, off, st, n) -> {
                    for (long i = 0; i < n; i++) {
                        o.putLong(data, off, st, i, op.i64().applyAsLong(o.getLong(1, data, off, st, i), o.getLong(2, data, off, st, i)));
                    }
                });
            }
        }
    }

    /** An op on tiles of floats: inputs in, output out, n elements (the arrays are padded to whole vectors). */
    private interface TileFn {
        void apply(float[][] in, float[] out, int n);
    }

    /** The iterator over an op's output and inputs, with the per-operand dtypes the loops convert from. */
    private static final class Operands implements AutoCloseable {
        final TensorIter iter;
        final DType[] dtypes;
        final DType common;
        final List<Tensor> copies = new ArrayList<>();

        Operands(ElementwiseMeta m, int arity) {
            Tensor out = m.output();
            List<Tensor> ins = new ArrayList<>(arity);
            for (int i = 0; i < arity; i++) ins.add(readable(out, m.input(i)));
            iter = TensorIter.of(out, ins);
            dtypes = new DType[arity + 1];
            dtypes[0] = out.dtype();
            for (int i = 0; i < arity; i++) dtypes[i + 1] = ins.get(i).dtype();
            common = m.commonDtype();
        }

        /**
         * An input that shares memory with the output, other than as the very same elements, is read
         * from a copy: writing a tile of the output must not change inputs still to be read.
         */
        private Tensor readable(Tensor out, Tensor in) {
            if (!in.sharesStorageWith(out) || Overlap.isSameView(in, out)) return in;
            Tensor copy = Copy.contiguous(in);
            copies.add(copy);
            return copy;
        }

        void floats(TileFn fn) {
            int nin = dtypes.length - 1;
            iter.forEach(() -> {
                float[][] in = new float[nin][TILE];
                float[] out = new float[TILE];
                return (data, off, st, n) -> {
                    for (long t = 0; t < n; t += TILE) {
                        int len = (int) Math.min(TILE, n - t);
                        for (int k = 1; k <= nin; k++) {
                            Floats.load(dtypes[k], data[k], off[k] + t * st[k], st[k], in[k - 1], 0, len);
                            if (dtypes[k] != common) Floats.round(in[k - 1], 0, len, common);
                        }
                        fn.apply(in, out, len);
                        Floats.store(out, 0, len, dtypes[0], data[0], off[0] + t * st[0], st[0]);
                    }
                };
            });
        }

        double getDouble(int k, MemorySegment[] data, long[] off, long[] st, long i) {
            return Elements.getDouble(data[k], off[k] + i * st[k], dtypes[k]);
        }

        void putDouble(MemorySegment[] data, long[] off, long[] st, long i, double v) {
            Elements.putDouble(data[0], off[0] + i * st[0], dtypes[0], v);
        }

        /** Input k as an integer of the common dtype (an int64 operand of an int32 op wraps first). */
        long getLong(int k, MemorySegment[] data, long[] off, long[] st, long i) {
            long v = Elements.getLong(data[k], off[k] + i * st[k], dtypes[k]);
            return dtypes[k] == common ? v : ScalarCast.narrow(v, common);
        }

        void putLong(MemorySegment[] data, long[] off, long[] st, long i, long v) {
            Elements.putLong(data[0], off[0] + i * st[0], dtypes[0], v);
        }

        @Override
        public void close() {
            copies.forEach(Tensor::close);
        }
    }
}
