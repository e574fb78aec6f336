package dev.sipu.crosscheck;

import dev.sipu.api.Conversions;
import dev.sipu.api.CpuMemory;
import dev.sipu.api.DType;
import dev.sipu.api.Device;
import dev.sipu.api.Elements;
import dev.sipu.api.Shapes;
import dev.sipu.api.Tensor;
import dev.sipu.dispatch.Dispatcher;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.function.DoubleBinaryOperator;
import java.util.function.DoubleUnaryOperator;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.fail;

/**
 * aten ops beyond the recorded cases: shapes large enough to cross SIMD tails and thread splits
 * (odd sizes, more than 2^16 elements), transposed inputs, every dtype pair of the casts. Each op
 * runs on SIPU (strict) and on CPU and both are compared with a plain double-precision reference
 * written here.
 */
class AtenCrossCheckTest {
    private static final Dispatcher D = Dispatcher.standard().strict(true);
    private static final Device[] DEVICES = {Device.CPU, Device.SIPU0};

    // ---- elementwise and reductions on large odd shapes ---------------------------------------

    @Test
    void binaryOpsWithBroadcastAndTransposedInputs() {
        SplittableRandom rnd = new SplittableRandom(1);
        double[] a = values(rnd, 517 * 263), b = values(rnd, 263);
        Map<String, DoubleBinaryOperator> ops = Map.of(
                "aten::add.Tensor", (x, y) -> x + y, "aten::sub.Tensor", (x, y) -> x - y,
                "aten::mul.Tensor", (x, y) -> x * y, "aten::div.Tensor", (x, y) -> x / y,
                "aten::lt.Tensor", (x, y) -> x < y ? 1 : 0);
        for (var op : ops.entrySet()) {
            for (DType t : new DType[] {DType.FLOAT32, DType.BFLOAT16}) {
                double[] want = new double[a.length];
                double[] ra = rounded(a, t), rb = rounded(b, t);
                for (int i = 0; i < a.length; i++) want[i] = op.getValue().applyAsDouble(ra[i], rb[i % 263]);
                for (Device dev : DEVICES) {
                    try (Tensor x = tensor(a, t, dev, 517, 263); Tensor y = tensor(b, t, dev, 263);
                         Tensor r = (Tensor) D.call(op.getKey(), x, y)) {
                        check(op.getKey() + " " + t + " on " + dev, want, r, op.getKey().contains("lt") ? 0 : tol(t));
                    }
                }
            }
        }
    }

    @Test
    void unaryOpsOnATransposedView() {
        SplittableRandom rnd = new SplittableRandom(2);
        double[] a = rounded(values(rnd, 301 * 257), DType.FLOAT32);
        Map<String, DoubleUnaryOperator> ops = Map.of(
                "aten::sigmoid", x -> 1 / (1 + Math.exp(-x)), "aten::silu", x -> x / (1 + Math.exp(-x)),
                "aten::neg", x -> -x, "aten::cos", Math::cos, "aten::rsqrt", x -> 1 / Math.sqrt(Math.abs(x) + 1));
        for (var op : ops.entrySet()) {
            double[] in = op.getKey().equals("aten::rsqrt") ? abs1(a) : a;
            for (Device dev : DEVICES) {
                try (Tensor x = tensor(in, DType.FLOAT32, dev, 301, 257);
                     Tensor xt = x.asStrided(new long[] {257, 301}, new long[] {1, 257}, x.offset());
                     Tensor r = (Tensor) D.call(op.getKey(), xt)) {
                    double[] want = new double[in.length];
                    for (int i = 0; i < 257; i++) {
                        for (int j = 0; j < 301; j++) {
                            double v = in[j * 257 + i];
                            want[i * 301 + j] = op.getKey().equals("aten::rsqrt") ? 1 / Math.sqrt(v) : op.getValue().applyAsDouble(v);
                        }
                    }
                    check(op.getKey() + " on " + dev, want, r, 4e-6);
                }
            }
        }
    }

    @Test
    void reductionsOverEachDimOfALargeTensor() {
        SplittableRandom rnd = new SplittableRandom(3);
        int r0 = 37, r1 = 1031, r2 = 9;
        double[] a = rounded(values(rnd, r0 * r1 * r2), DType.FLOAT32);
        for (int dim = 0; dim < 3; dim++) {
            int[] sizes = {r0, r1, r2};
            int n = sizes[dim];
            int outer = 1, inner = 1;
            for (int d = 0; d < dim; d++) outer *= sizes[d];
            for (int d = dim + 1; d < 3; d++) inner *= sizes[d];
            double[] sum = new double[outer * inner], max = new double[outer * inner], arg = new double[outer * inner];
            double[] soft = new double[a.length], cum = new double[a.length];
            for (int o = 0; o < outer; o++) {
                for (int i = 0; i < inner; i++) {
                    int out = o * inner + i;
                    double s = 0, m = Double.NEGATIVE_INFINITY, z = 0;
                    int am = 0;
                    for (int j = 0; j < n; j++) {
                        double v = a[(o * n + j) * inner + i];
                        s += v;
                        cum[(o * n + j) * inner + i] = s;
                        if (v > m) { m = v; am = j; }
                    }
                    for (int j = 0; j < n; j++) z += Math.exp(a[(o * n + j) * inner + i] - m);
                    for (int j = 0; j < n; j++) soft[(o * n + j) * inner + i] = Math.exp(a[(o * n + j) * inner + i] - m) / z;
                    sum[out] = s;
                    max[out] = m;
                    arg[out] = am;
                }
            }
            for (Device dev : DEVICES) {
                try (Tensor x = tensor(a, DType.FLOAT32, dev, r0, r1, r2)) {
                    String where = " over dim " + dim + " on " + dev;
                    try (Tensor r = (Tensor) D.call("aten::sum.dim_IntList", new Object[] {x, new long[] {dim}, false}, Map.of())) {
                        check("sum" + where, sum, r, 2e-4);
                    }
                    try (Tensor r = (Tensor) D.call("aten::amax", new Object[] {x, new long[] {dim}, false}, Map.of())) {
                        check("amax" + where, max, r, 0);
                    }
                    try (Tensor r = (Tensor) D.call("aten::argmax", new Object[] {x, (long) dim, false}, Map.of())) {
                        check("argmax" + where, arg, r, 0);
                    }
                    try (Tensor r = (Tensor) D.call("aten::_softmax", x, (long) dim, false)) {
                        check("softmax" + where, soft, r, 2e-6);
                    }
                    try (Tensor r = (Tensor) D.call("aten::cumsum", new Object[] {x, (long) dim}, Map.of())) {
                        check("cumsum" + where, cum, r, 2e-4);
                    }
                }
            }
        }
    }

    @Test
    void indexSelectAndGatherOnLargeTables() {
        SplittableRandom rnd = new SplittableRandom(4);
        int v = 5003, h = 67, n = 999;
        double[] table = rounded(values(rnd, v * h), DType.FLOAT32);
        double[] ids = new double[n];
        for (int i = 0; i < n; i++) ids[i] = rnd.nextInt(v);
        double[] want = new double[n * h];
        for (int i = 0; i < n; i++) System.arraycopy(table, (int) ids[i] * h, want, i * h, h);
        for (Device dev : DEVICES) {
            try (Tensor t = tensor(table, DType.FLOAT32, dev, v, h); Tensor idx = tensor(ids, DType.INT64, dev, n);
                 Tensor r = (Tensor) D.call("aten::index_select", t, 0L, idx)) {
                check("index_select on " + dev, want, r, 0);
            }
        }
    }

    // ---- casts: every dtype pair ----------------------------------------------------------

    static Stream<DType[]> dtypePairs() {
        List<DType[]> pairs = new ArrayList<>();
        for (DType from : DType.values()) for (DType to : DType.values()) pairs.add(new DType[] {from, to});
        return pairs.stream();
    }

    /** Values every dtype holds exactly (small integers, halves), so the reference is the value itself. */
    @ParameterizedTest(name = "{0} -> {1}")
    @MethodSource("dtypePairs")
    void castsBetweenEveryPairOfDtypes(DType from, DType to) {
        int n = 70001;  // odd, above the thread split
        double[] v = new double[n];
        for (int i = 0; i < n; i++) {
            int k = i % 13 - 4;  // -4..8
            v[i] = from == DType.BOOL || to == DType.BOOL ? (k > 0 ? 1 : 0)
                    : from == DType.UINT8 || to == DType.UINT8 ? Math.abs(k) : (from.isFloatingPoint() && to.isFloatingPoint() ? k * 0.5 : k);
        }
        for (Device dev : DEVICES) {
            try (Tensor x = tensor(v, from, dev, n);
                 Tensor r = (Tensor) D.call("aten::_to_copy", new Object[] {x}, Map.of("dtype", to))) {
                assertEquals(to, r.dtype());
                check(from + " -> " + to + " on " + dev, v, r, 0);
            }
        }
    }

    // ---- helpers ----------------------------------------------------------------------------

    private static double[] values(SplittableRandom rnd, int n) {
        double[] v = new double[n];
        for (int i = 0; i < n; i++) v[i] = rnd.nextDouble(-3, 3);
        return v;
    }

    private static double[] abs1(double[] a) {
        double[] r = new double[a.length];
        for (int i = 0; i < a.length; i++) r[i] = Math.abs(a[i]) + 0.01;
        return r;
    }

    /** Values as stored in dtype t (the inputs the devices actually see). */
    private static double[] rounded(double[] v, DType t) {
        double[] r = new double[v.length];
        for (int i = 0; i < v.length; i++) {
            float f = (float) v[i];
            r[i] = t == DType.BFLOAT16 ? Conversions.bf16ToFloat(Conversions.floatToBf16(f)) : f;
        }
        return r;
    }

    private static double tol(DType t) {
        return t == DType.BFLOAT16 ? 1.6e-2 : 2e-6;
    }

    /** A contiguous tensor of dtype t holding v, on the device. */
    static Tensor tensor(double[] v, DType t, Device dev, long... shape) {
        Tensor host = Tensor.adopt(CpuMemory.allocate(Shapes.numel(shape) * t.itemSize()), t, shape);
        for (int i = 0; i < v.length; i++) {
            long at = (long) i * t.itemSize();
            if (t.isFloatingPoint()) Elements.putDouble(host.data(), at, t, v[i]);
            else Elements.putLong(host.data(), at, t, (long) v[i]);
        }
        if (dev.isCpu()) return host;
        try (host) {
            return D.to(host, dev);
        }
    }

    /** |got - want| <= rtol * |want| + rtol (0: exact), element by element in row-major order. */
    static void check(String what, double[] want, Tensor got, double rtol) {
        try (Tensor host = D.to(got, Device.CPU)) {
            assertEquals(want.length, host.numel(), what + ": element count");
            DType t = host.dtype();
            for (int i = 0; i < want.length; i++) {
                long at = (long) i * t.itemSize();
                double g = t.isFloatingPoint() ? Elements.getDouble(host.data(), at, t) : Elements.getLong(host.data(), at, t);
                if (Double.isNaN(want[i]) != Double.isNaN(g) || Math.abs(g - want[i]) > rtol * Math.abs(want[i]) + rtol) {
                    fail(what + ": element " + i + " is " + g + ", expected " + want[i]);
                }
            }
        }
    }
}
