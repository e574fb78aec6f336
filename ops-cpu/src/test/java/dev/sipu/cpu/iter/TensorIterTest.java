package dev.sipu.cpu.iter;

import dev.sipu.api.DType;
import dev.sipu.api.Elements;
import dev.sipu.api.Tensor;
import dev.sipu.cpu.TestTensors;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

class TensorIterTest {

    @Test
    void contiguousTensorOfAnyRankIsOneRun() {
        try (Tensor a = TestTensors.empty(DType.FLOAT32, 2, 3, 4, 5); Tensor b = TestTensors.empty(DType.BFLOAT16, 2, 3, 4, 5)) {
            TensorIter it = TensorIter.of(a, b);
            assertEquals(1, it.dims());
            assertEquals(120, it.size(0));
            assertEquals(4, it.stride(0, 0));
            assertEquals(2, it.stride(0, 1));
            assertEquals(1, runs(it).size());
        }
    }

    @Test
    void transposedOutputIsWrittenInMemoryOrder() {
        try (Tensor out = TestTensors.transposed(DType.FLOAT32, 1, 6, 4); Tensor in = TestTensors.empty(DType.FLOAT32, 6, 4)) {
            TensorIter it = TensorIter.of(out, in);
            assertEquals(2, it.dims());
            assertEquals(4, it.stride(0, 0), "innermost dimension is the output's unit stride");
            assertEquals(6, it.size(0));
        }
    }

    @Test
    void broadcastRowIsARunPerRowAndScalarsAreOneElement() {
        try (Tensor out = TestTensors.empty(DType.FLOAT32, 5, 7); Tensor row = TestTensors.empty(DType.FLOAT32, 7);
             Tensor wide = row.asStrided(new long[] {5, 7}, new long[] {0, 1}, 0)) {
            TensorIter it = TensorIter.of(out, wide);
            assertEquals(2, it.dims());
            assertEquals(0, it.stride(1, 1));
            assertEquals(5, runs(it).size());
        }
        try (Tensor s = TestTensors.empty(DType.INT64); Tensor t = TestTensors.empty(DType.INT8)) {
            TensorIter it = TensorIter.of(s, t);
            assertEquals(0, it.dims());
            assertEquals(List.of(1L), runs(it).stream().map(r -> r[r.length - 1]).toList());
        }
        try (Tensor e = TestTensors.empty(DType.FLOAT32, 0, 3)) {
            assertEquals(0, runs(TensorIter.of(e)).size());
        }
    }

    @Test
    void shapesMustMatch() {
        try (Tensor a = TestTensors.empty(DType.FLOAT32, 2, 3); Tensor b = TestTensors.empty(DType.FLOAT32, 3, 2)) {
            assertThrows(IllegalArgumentException.class, () -> TensorIter.of(a, b));
        }
    }

    /**
     * For random layouts (permuted, sliced, broadcast, overlapping), the runs visit every element
     * exactly once, pair each output element with the input element of the same index, and any
     * split of the range gives the same runs as the whole.
     */
    @Test
    void runsCoverEveryElementOnceWithMatchingOperands() {
        SplittableRandom r = new SplittableRandom(11);
        for (int trial = 0; trial < 300; trial++) {
            int rank = r.nextInt(0, 5);
            long[] shape = new long[rank];
            for (int d = 0; d < rank; d++) shape[d] = r.nextInt(1, 5);
            try (Tensor out = layout(r, shape, false); Tensor in = layout(r, shape, true)) {
                Map<Long, Long> outToIn = new HashMap<>();
                long numel = out.numel();
                for (long i = 0; i < numel; i++) outToIn.put(Elements.byteOffsetOf(out, i), Elements.byteOffsetOf(in, i));
                TensorIter it = TensorIter.of(out, in);
                List<long[]> whole = runs(it);
                Map<Long, Integer> seen = new HashMap<>();
                for (long[] run : whole) {
                    for (long j = 0; j < run[4]; j++) {
                        long o = run[0] + j * run[2], x = run[1] + j * run[3];
                        seen.merge(o, 1, Integer::sum);
                        assertEquals(outToIn.get(o), x, "input paired with output byte " + o);
                    }
                }
                assertEquals(outToIn.keySet(), seen.keySet());
                seen.values().forEach(v -> assertEquals(1, v));
                long cut = numel == 0 ? 0 : r.nextLong(numel + 1);
                List<long[]> split = new ArrayList<>();
                it.forRange(0, cut, collect(split));
                it.forRange(cut, numel, collect(split));
                assertEquals(count(whole), count(split));
            }
        }
    }

    /** Output layouts are permutations of contiguous storage (never overlapping); inputs may also broadcast. */
    private static Tensor layout(SplittableRandom r, long[] shape, boolean mayBroadcast) {
        int rank = shape.length;
        int[] perm = new int[rank];
        for (int i = 0; i < rank; i++) perm[i] = i;
        for (int i = rank - 1; i > 0; i--) {
            int j = r.nextInt(i + 1);
            int t = perm[i];
            perm[i] = perm[j];
            perm[j] = t;
        }
        long[] strides = new long[rank];
        long s = r.nextInt(1, 3);  // a step of 2 leaves gaps, as a slice does
        for (int i = rank - 1; i >= 0; i--) {
            int d = perm[i];
            strides[d] = mayBroadcast && r.nextInt(4) == 0 ? 0 : s;
            s *= shape[d];
        }
        long offset = r.nextInt(0, 3);
        return TestTensors.view(DType.FLOAT32, 1, s + offset + 1, shape, strides, offset);
    }

    private static List<long[]> runs(TensorIter it) {
        List<long[]> out = new ArrayList<>();
        it.forRange(0, it.numel(), collect(out));
        return out;
    }

    private static RunLoop collect(List<long[]> out) {
        return (data, off, st, n) -> {
            long[] run = new long[off.length * 2 + 1];
            for (int k = 0; k < off.length; k++) {
                run[k] = off[k];
                run[off.length + k] = st[k];
            }
            run[run.length - 1] = n;
            out.add(run);
        };
    }

    private static long count(List<long[]> runs) {
        return runs.stream().mapToLong(r -> r[r.length - 1]).sum();
    }

    @Test
    void parallelForEachSplitsLargeIterationsIntoDisjointRanges() {
        try (Tensor a = TestTensors.empty(DType.FLOAT32, 300_000)) {
            TensorIter it = TensorIter.of(a);
            long[] total = new long[1];
            it.forEach(() -> (data, off, st, n) -> {
                synchronized (total) {
                    total[0] += n;
                }
            });
            assertEquals(300_000, total[0]);
            assertArrayEquals(new long[] {300_000}, a.sizes());
        }
    }
}
