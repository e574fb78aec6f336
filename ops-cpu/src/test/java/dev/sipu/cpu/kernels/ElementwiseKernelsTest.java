package dev.sipu.cpu.kernels;

import dev.sipu.api.DType;
import dev.sipu.api.OpArgumentException;
import dev.sipu.api.Scalar;
import dev.sipu.api.Shapes;
import dev.sipu.api.Tensor;
import dev.sipu.api.TypePromotion;
import dev.sipu.cpu.TestTensors;
import dev.sipu.dispatch.DispatchKey;
import dev.sipu.dispatch.Dispatcher;
import dev.sipu.dispatch.meta.Broadcast;
import dev.sipu.dispatch.meta.ElementwiseMeta;
import dev.sipu.dispatch.meta.Promotion;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.function.DoubleBinaryOperator;
import java.util.function.DoubleUnaryOperator;

import static dev.sipu.cpu.TestTensors.assertClose;
import static dev.sipu.cpu.TestTensors.assertShape;
import static dev.sipu.cpu.TestTensors.of;
import static dev.sipu.cpu.TestTensors.random;
import static dev.sipu.cpu.TestTensors.scalar;
import static dev.sipu.cpu.TestTensors.values;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** add, sub, mul, div, neg, sigmoid, silu against double-precision references on many layouts and dtypes. */
class ElementwiseKernelsTest {

    static final DType[] FLOATS = {DType.FLOAT32, DType.BFLOAT16, DType.FLOAT16, DType.FLOAT64};
    static final DType[] INTS = {DType.INT64, DType.INT32, DType.INT16, DType.INT8, DType.UINT8};
    /** Across vector widths, tiles (1024) and the split into threads (65536 per task). */
    static final long[] SIZES = {1, 7, 16, 17, 1000, 70_000, 200_003};

    // ---- references ------------------------------------------------------------------------

    /** Rounds an exact value to what a tensor of dtype t stores (integers wrap). */
    static double round(DType t, double v) {
        return switch (t) {
            case FLOAT64 -> v;
            case FLOAT32 -> (float) v;
            case BFLOAT16, FLOAT16 -> {
                try (Tensor x = scalar(t, v)) {
                    yield TestTensors.get(x, 0);
                }
            }
            case INT64 -> (long) v;
            case INT32 -> (int) (long) v;
            case INT16 -> (short) (long) v;
            case INT8 -> (byte) (long) v;
            case UINT8 -> ((long) v) & 0xFF;
            case BOOL -> v != 0 ? 1 : 0;
            default -> throw new IllegalArgumentException(t.toString());
        };
    }

    /**
     * The reference of a binary op: inputs converted to the common dtype (as PyTorch casts them),
     * the op in double, one rounding to the result dtype. {@code keepOther}: the second operand is
     * used at its own precision (the reduced-float mul/div scalar path).
     */
    static double[] expectBinary(Tensor a, Tensor b, long[] shape, DType common, DType result, boolean keepOther,
                                 DoubleBinaryOperator f) {
        try (Tensor ea = Broadcast.expand(a, shape); Tensor eb = Broadcast.expand(b, shape)) {
            double[] x = values(ea), y = values(eb), out = new double[x.length];
            for (int i = 0; i < out.length; i++) {
                double yi = keepOther ? (float) y[i] : round(common, y[i]);
                out[i] = round(result, f.applyAsDouble(round(common, x[i]), yi));
            }
            return out;
        }
    }

    static double[] expectUnary(Tensor a, DType result, DoubleUnaryOperator f) {
        double[] x = values(a), out = new double[x.length];
        for (int i = 0; i < out.length; i++) out[i] = round(result, f.applyAsDouble(x[i]));
        return out;
    }

    /** Units in the last place a result may differ by: 1 for the narrow floats, a few for transcendental fp32/fp64. */
    static double ulps(DType t, boolean transcendental) {
        if (t == DType.BFLOAT16 || t == DType.FLOAT16) return 1;
        return transcendental ? 4 : 1;
    }

    record Op(String name, DoubleBinaryOperator ref) {}

    static final List<Op> BINARY = List.of(
            new Op("aten::add.Tensor", Double::sum),
            new Op("aten::sub.Tensor", (x, y) -> x - y),
            new Op("aten::mul.Tensor", (x, y) -> x * y),
            new Op("aten::div.Tensor", (x, y) -> x / y));

    private static Tensor binary(String op, Tensor a, Tensor b) {
        return (Tensor) TestTensors.call(op, a, b);
    }

    private static void checkBinary(Op op, Tensor a, Tensor b, String what) {
        long[] shape = Shapes.broadcast(a.sizes(), b.sizes());
        DType common = TypePromotion.resultType(a, b);
        if (op.name().equals("aten::div.Tensor") && !common.isFloatingPoint()) common = DType.FLOAT32;
        boolean scalarOther = (common == DType.BFLOAT16 || common == DType.FLOAT16) && b.numel() == 1
                && (op.name().equals("aten::mul.Tensor") || op.name().equals("aten::div.Tensor"));
        try (Tensor out = binary(op.name(), a, b)) {
            assertShape(out, common, shape);
            assertTrue(out.isContiguous());
            assertClose(out, expectBinary(a, b, shape, common, common, scalarOther, op.ref()), ulps(common, false));
        } catch (AssertionError e) {
            throw new AssertionError(op.name() + " " + what + ": " + e.getMessage(), e);
        }
    }

    // ---- binary ops --------------------------------------------------------------------------

    @Test
    void contiguousAcrossVectorWidthsAndThreads() {
        for (Op op : BINARY) {
            for (DType t : FLOATS) {
                for (long n : SIZES) {
                    try (Tensor a = random(t, n, n); Tensor b = random(t, n + 1, n)) {
                        checkBinary(op, a, b, t + "[" + n + "]");
                    }
                }
            }
        }
    }

    @Test
    void integersWrapAndDivideAsFloat() {
        for (Op op : BINARY) {
            for (DType t : INTS) {
                try (Tensor a = random(t, 1, 1000); Tensor b = random(t, 2, 1000)) {
                    checkBinary(op, a, b, t.toString());
                }
            }
        }
        // Overflow wraps in the narrow type, as PyTorch's int8 arithmetic does.
        try (Tensor a = of(DType.INT8, new long[] {3}, 100, -128, 127); Tensor b = of(DType.INT8, new long[] {3}, 100, -1, 1);
             Tensor sum = binary("aten::add.Tensor", a, b); Tensor prod = binary("aten::mul.Tensor", a, b)) {
            assertArrayEquals(new double[] {-56, 127, -128}, values(sum));
            assertArrayEquals(new double[] {16, -128, 127}, values(prod));
        }
        try (Tensor a = of(DType.INT64, new long[] {2}, 7, -7); Tensor b = of(DType.INT64, new long[] {2}, 2, 0);
             Tensor q = binary("aten::div.Tensor", a, b)) {
            assertShape(q, DType.FLOAT32, 2);
            assertArrayEquals(new double[] {3.5, Double.NEGATIVE_INFINITY}, values(q));
        }
    }

    @Test
    void boolAddIsOrAndMulIsAnd() {
        try (Tensor a = of(DType.BOOL, new long[] {4}, 0, 0, 1, 1); Tensor b = of(DType.BOOL, new long[] {4}, 0, 1, 0, 1);
             Tensor sum = binary("aten::add.Tensor", a, b); Tensor prod = binary("aten::mul.Tensor", a, b)) {
            assertShape(sum, DType.BOOL, 4);
            assertArrayEquals(new double[] {0, 1, 1, 1}, values(sum));
            assertArrayEquals(new double[] {0, 0, 0, 1}, values(prod));
        }
    }

    @Test
    void transposedBroadcastZeroDimAndEmptyOperands() {
        for (Op op : BINARY) {
            for (DType t : FLOATS) {
                List<Tensor[]> cases = new ArrayList<>();
                cases.add(new Tensor[] {TestTensors.transposed(t, 1, 33, 17), random(t, 2, 33, 17)});
                cases.add(new Tensor[] {random(t, 3, 33, 17), TestTensors.transposed(t, 4, 33, 17)});
                cases.add(new Tensor[] {random(t, 5, 9, 33), random(t, 6, 33)});             // row broadcast
                cases.add(new Tensor[] {random(t, 7, 9, 1), random(t, 8, 1, 33)});           // outer product shape
                cases.add(new Tensor[] {random(t, 9, 3, 1, 17), random(t, 10, 4, 1)});       // 3-D broadcast
                cases.add(new Tensor[] {random(t, 11, 40, 33), random(t, 12)});              // 0-dim operand
                cases.add(new Tensor[] {random(t, 13), random(t, 14, 40, 33)});
                cases.add(new Tensor[] {random(t, 15), random(t, 16)});                      // 0-dim result
                cases.add(new Tensor[] {random(t, 17, 0, 33), random(t, 18, 33)});           // empty
                try (Tensor row = random(t, 19, 33)) {
                    cases.add(new Tensor[] {random(t, 20, 5, 33), row.asStrided(new long[] {5, 33}, new long[] {0, 1}, 0)});
                }
                try (Tensor base = random(t, 21, 100)) {                                     // overlapping windows
                    cases.add(new Tensor[] {base.asStrided(new long[] {10, 20}, new long[] {5, 1}, 3), random(t, 22, 10, 20)});
                }
                for (Tensor[] c : cases) {
                    try (Tensor a = c[0]; Tensor b = c[1]) {
                        checkBinary(op, a, b, t + " " + a + " with " + b);
                    }
                }
            }
        }
    }

    @Test
    void alphaScalesOtherWithOneRounding() {
        try (Tensor a = random(DType.FLOAT32, 1, 1000); Tensor b = random(DType.FLOAT32, 2, 1000);
             Tensor s = (Tensor) TestTensors.call("aten::add.Tensor", new Object[] {a, b}, Map.of("alpha", Scalar.of(2.5)));
             Tensor d = (Tensor) TestTensors.call("aten::sub.Tensor", new Object[] {a, b}, Map.of("alpha", Scalar.of(0.5)))) {
            double[] x = values(a), y = values(b), gs = values(s), gd = values(d);
            for (int i = 0; i < x.length; i++) {
                assertEquals(Math.fma(2.5f, (float) y[i], (float) x[i]), gs[i], 0, "add alpha at " + i);
                assertEquals(Math.fma(-0.5f, (float) y[i], (float) x[i]), gd[i], 0, "sub alpha at " + i);
            }
        }
        try (Tensor a = of(DType.INT64, new long[] {2}, 1, 2); Tensor b = of(DType.INT64, new long[] {2}, 10, 20);
             Tensor s = (Tensor) TestTensors.call("aten::sub.Tensor", new Object[] {a, b}, Map.of("alpha", Scalar.of(3L)))) {
            assertArrayEquals(new double[] {-29, -58}, values(s));
        }
        // A bf16 op sees alpha as a bf16 value (PyTorch's alpha.to<BFloat16>()): 0.1 becomes 0.10009765625.
        try (Tensor a = of(DType.BFLOAT16, new long[] {1}, 0); Tensor b = of(DType.BFLOAT16, new long[] {1}, 1);
             Tensor s = (Tensor) TestTensors.call("aten::add.Tensor", new Object[] {a, b}, Map.of("alpha", Scalar.of(0.1)))) {
            assertEquals(0.10009765625, values(s)[0]);
        }
    }

    @Test
    void reducedFloatMulAndDivReadAOneElementOtherAtItsOwnPrecision() {
        // 1.00390625 is not a bf16 value; rounded first it would be 1.0 and leave x unchanged.
        try (Tensor x = of(DType.BFLOAT16, new long[] {2}, 256, 3); Tensor s = scalar(DType.FLOAT32, 1.00390625);
             Tensor p = binary("aten::mul.Tensor", x, s); Tensor q = binary("aten::div.Tensor", x, s)) {
            assertShape(p, DType.BFLOAT16, 2);
            assertArrayEquals(new double[] {256, 3.015625}, values(p));      // with s rounded to 1.0: 256, 3
            assertArrayEquals(new double[] {255, 2.984375}, values(q));      // with s rounded to 1.0: 256, 3
        }
        // add has no such path: the 0-dim operand is rounded to bf16 (1.0) with the other inputs.
        try (Tensor x = of(DType.BFLOAT16, new long[] {1}, 0x1p-8); Tensor s = scalar(DType.FLOAT32, 1.00390625);
             Tensor y = binary("aten::add.Tensor", x, s)) {
            assertEquals(1.0, values(y)[0]);
        }
    }

    @Test
    void typePromotion() {
        record Case(DType a, long[] sa, DType b, long[] sb, DType expect) {}
        long[] vec = {3}, zero = {};
        List<Case> cases = List.of(
                new Case(DType.INT64, vec, DType.FLOAT32, zero, DType.FLOAT32),   // int tensor + float 0-dim
                new Case(DType.FLOAT32, vec, DType.FLOAT64, zero, DType.FLOAT32), // 0-dim float64 does not widen
                new Case(DType.FLOAT64, zero, DType.FLOAT32, vec, DType.FLOAT32),
                new Case(DType.BFLOAT16, vec, DType.FLOAT32, vec, DType.FLOAT32),
                new Case(DType.BFLOAT16, vec, DType.FLOAT32, zero, DType.BFLOAT16),
                new Case(DType.BFLOAT16, vec, DType.FLOAT16, vec, DType.FLOAT32),
                new Case(DType.UINT8, vec, DType.INT8, vec, DType.INT16),
                new Case(DType.INT32, vec, DType.INT64, zero, DType.INT32),
                new Case(DType.BOOL, vec, DType.INT64, zero, DType.INT64),
                new Case(DType.INT64, zero, DType.FLOAT64, zero, DType.FLOAT64));
        for (Case c : cases) {
            try (Tensor a = random(c.a(), 1, c.sa()); Tensor b = random(c.b(), 2, c.sb())) {
                for (Op op : BINARY) {
                    if (op.name().equals("aten::sub.Tensor") && (c.a().isBool() || c.b().isBool())) continue;
                    checkBinary(op, a, b, c.toString());
                }
                try (Tensor out = binary("aten::add.Tensor", a, b)) {
                    assertEquals(c.expect(), out.dtype(), c.toString());
                }
            }
        }
    }

    /** Scalars promote at the lowest priority (checked through test-only kernels that return their meta's output). */
    @Test
    void scalarOperandsPromoteBelowTensors() {
        Dispatcher d = TestTensors.with(r -> {
            r.register("aten::rsub.Scalar", DispatchKey.CPU, c -> output(ElementwiseMeta.compute(c, Promotion.DEFAULT, 0, 1)));
            r.register("aten::lt.Scalar", DispatchKey.CPU, c -> output(ElementwiseMeta.compute(c, Promotion.ALWAYS_BOOL, 0, 1)));
            r.register("aten::pow.Tensor_Scalar", DispatchKey.CPU, c -> output(ElementwiseMeta.compute(c, Promotion.INT_TO_FLOAT, 0, 1)));
        });
        try (Tensor i = random(DType.INT64, 1, 3); Tensor h = random(DType.FLOAT16, 1, 3); Tensor z = random(DType.INT32, 1)) {
            assertEquals(DType.FLOAT32, dtypeOf(d.call("aten::rsub.Scalar", i, Scalar.of(2.5), Scalar.of(1L))));
            assertEquals(DType.INT64, dtypeOf(d.call("aten::rsub.Scalar", i, Scalar.of(2L), Scalar.of(1L))));
            assertEquals(DType.FLOAT16, dtypeOf(d.call("aten::rsub.Scalar", h, Scalar.of(2.5), Scalar.of(1L))));
            assertEquals(DType.INT32, dtypeOf(d.call("aten::rsub.Scalar", z, Scalar.of(7L), Scalar.of(1L))));
            assertEquals(DType.BOOL, dtypeOf(d.call("aten::lt.Scalar", i, Scalar.of(2.5))));
            assertEquals(DType.FLOAT32, dtypeOf(d.call("aten::pow.Tensor_Scalar", i, Scalar.of(2L))));
        }
    }

    private static Tensor output(ElementwiseMeta m) {
        try (m) {
            return m.takeOutput();
        }
    }

    private static DType dtypeOf(Object t) {
        try (Tensor x = (Tensor) t) {
            return x.dtype();
        }
    }

    /** In-place and out= ops write an existing tensor through {@link ElementwiseMeta#into} (here a test-only div_). */
    @Test
    void inPlaceOpsWriteTheirSelfThroughIntoMeta() {
        Dispatcher d = TestTensors.with(r -> r.register("aten::div_.Tensor", DispatchKey.CPU, c -> {
            try (ElementwiseMeta m = ElementwiseMeta.into(c, 0, Promotion.INT_TO_FLOAT, 0, 1)) {
                dev.sipu.cpu.loops.Pointwise.binary(m, ElementwiseKernels.DIV);
            }
            return c.tensor(0);
        }));
        try (Tensor a = random(DType.FLOAT32, 1, 3, 4); Tensor b = random(DType.FLOAT32, 2, 4)) {
            double[] want = expectBinary(a, b, new long[] {3, 4}, DType.FLOAT32, DType.FLOAT32, false, (x, y) -> x / y);
            assertEquals(a, d.call("aten::div_.Tensor", a, b));
            assertClose(a, want, 1);
        }
        // bf16 self, fp32 other: computed in fp32 (the common dtype), rounded once into bf16
        try (Tensor a = random(DType.BFLOAT16, 3, 100); Tensor b = random(DType.FLOAT32, 4, 100)) {
            double[] want = expectBinary(a, b, new long[] {100}, DType.FLOAT32, DType.BFLOAT16, false, (x, y) -> x / y);
            d.call("aten::div_.Tensor", a, b);
            assertClose(a, want, 1);
        }
        try (Tensor i = random(DType.INT64, 5, 4); Tensor small = random(DType.FLOAT32, 6, 4); Tensor big = random(DType.FLOAT32, 7, 3, 4);
             Tensor base = random(DType.FLOAT32, 8, 12); Tensor lo = base.asStrided(new long[] {8}, new long[] {1}, 0);
             Tensor hi = base.asStrided(new long[] {8}, new long[] {1}, 4)) {
            byte[] bi = TestTensors.bytes(i), bs = TestTensors.bytes(small), bb = TestTensors.bytes(base);
            OpArgumentException e = assertThrows(OpArgumentException.class, () -> d.call("aten::div_.Tensor", i, i));
            assertTrue(e.getMessage().contains("result type float32 can't be cast to the desired output type int64"), e.getMessage());
            e = assertThrows(OpArgumentException.class, () -> d.call("aten::div_.Tensor", small, big));
            assertTrue(e.getMessage().contains("output with shape [4] doesn't match the broadcast shape [3, 4]"), e.getMessage());
            assertThrows(OpArgumentException.class, () -> d.call("aten::div_.Tensor", lo, hi));
            assertArrayEquals(bi, TestTensors.bytes(i));
            assertArrayEquals(bs, TestTensors.bytes(small));
            assertArrayEquals(bb, TestTensors.bytes(base));
        }
    }

    // ---- unary ops ---------------------------------------------------------------------------

    /** The references compute as PyTorch does: in double for float64, in fp32 (exp included) for the rest. */
    static DoubleUnaryOperator sigmoid(DType t) {
        if (t == DType.FLOAT64) return x -> 1 / (1 + Math.exp(-x));
        return x -> 1f / (1f + (float) Math.exp(-(float) x));
    }

    static DoubleUnaryOperator silu(DType t) {
        if (t == DType.FLOAT64) return x -> x / (1 + Math.exp(-x));
        return x -> (float) x / (1f + (float) Math.exp(-(float) x));
    }

    @Test
    void unaryOpsAcrossDtypesSizesAndLayouts() {
        record U(String op, java.util.function.Function<DType, DoubleUnaryOperator> ref, boolean transcendental) {}
        List<U> ops = List.of(new U("aten::neg", t -> x -> -x, false), new U("aten::sigmoid", ElementwiseKernelsTest::sigmoid, true),
                new U("aten::silu", ElementwiseKernelsTest::silu, true));
        for (U u : ops) {
            for (DType t : FLOATS) {
                List<Tensor> inputs = new ArrayList<>();
                for (long n : SIZES) inputs.add(random(t, n, n));
                inputs.add(TestTensors.transposed(t, 3, 33, 17));
                inputs.add(random(t, 4));
                inputs.add(random(t, 5, 0, 4));
                try (Tensor row = random(t, 6, 17)) {
                    inputs.add(row.asStrided(new long[] {4, 17}, new long[] {0, 1}, 0));
                }
                for (Tensor x : inputs) {
                    try (x; Tensor y = (Tensor) TestTensors.call(u.op(), x)) {
                        assertShape(y, t, x.sizes());
                        assertClose(y, expectUnary(x, t, u.ref().apply(t)), ulps(t, u.transcendental()));
                    } catch (AssertionError e) {
                        throw new AssertionError(u.op() + " " + x + ": " + e.getMessage(), e);
                    }
                }
            }
        }
    }

    @Test
    void activationsSaturateLikePyTorch() {
        double[] x = {-200, -100, -88.5, -20, -1, -0.0, 0, 1, 20, 88.5, 100, Double.NEGATIVE_INFINITY, Double.POSITIVE_INFINITY, Double.NaN};
        for (DType t : FLOATS) {
            try (Tensor in = of(t, new long[] {x.length}, x);
                 Tensor s = (Tensor) TestTensors.call("aten::sigmoid", in); Tensor u = (Tensor) TestTensors.call("aten::silu", in)) {
                assertClose(s, expectUnary(in, t, sigmoid(t)), 4);
                double[] e = expectUnary(in, t, silu(t));
                e[11] = Double.NaN;   // -inf / (1 + inf)
                assertClose(u, e, 4);
            }
        }
    }

    @Test
    void integerNegWrapsAndSigmoidOfIntegersIsFloat() {
        try (Tensor a = of(DType.INT8, new long[] {3}, -128, 5, 0); Tensor n = (Tensor) TestTensors.call("aten::neg", a);
             Tensor u = of(DType.UINT8, new long[] {2}, 1, 0); Tensor nu = (Tensor) TestTensors.call("aten::neg", u);
             Tensor i = of(DType.INT64, new long[] {2}, 0, 2); Tensor s = (Tensor) TestTensors.call("aten::sigmoid", i)) {
            assertArrayEquals(new double[] {-128, -5, 0}, values(n));
            assertArrayEquals(new double[] {255, 0}, values(nu));
            assertShape(s, DType.FLOAT32, 2);
            assertClose(s, new double[] {0.5, sigmoid(DType.FLOAT32).applyAsDouble(2)}, 2);
        }
    }

    // ---- errors ------------------------------------------------------------------------------

    private static OpArgumentException error(String op, Object[] args, Map<String, ?> kwargs) {
        return assertThrows(OpArgumentException.class, () -> TestTensors.call(op, args, kwargs));
    }

    @Test
    void errorsNameTheOpAndTheArgument() {
        try (Tensor a = random(DType.FLOAT32, 1, 3, 4); Tensor b = random(DType.FLOAT32, 2, 2, 4);
             Tensor bo = of(DType.BOOL, new long[] {3}, 1, 0, 1); Tensor i = random(DType.INT64, 3, 3);
             Tensor f8 = of(DType.FLOAT8_E4M3FN, new long[] {3}, 1, 2, 3)) {
            OpArgumentException e = error("aten::add.Tensor", new Object[] {a, b}, Map.of());
            assertEquals("aten::add.Tensor", e.op());
            assertEquals("other", e.argument());
            assertTrue(e.getMessage().contains("The size of tensor a (3) must match the size of tensor b (2) at non-singleton dimension 0"), e.getMessage());
            assertEquals("self", error("aten::neg", new Object[] {bo}, Map.of()).argument());
            error("aten::sub.Tensor", new Object[] {bo, bo}, Map.of());
            error("aten::sub.Tensor", new Object[] {i, bo}, Map.of());
            assertEquals("alpha", error("aten::add.Tensor", new Object[] {i, i}, Map.of("alpha", Scalar.of(0.5))).argument());
            assertEquals("alpha", error("aten::add.Tensor", new Object[] {a, a}, Map.of("alpha", Scalar.of(true))).argument());
            assertEquals("alpha", error("aten::add.Tensor", new Object[] {bo, bo}, Map.of("alpha", Scalar.of(2.0))).argument());
            error("aten::silu", new Object[] {i}, Map.of());
            error("aten::mul.Tensor", new Object[] {f8, f8}, Map.of());
            // int8 + int8 with an alpha int8 cannot hold
            try (Tensor c = random(DType.INT8, 4, 3)) {
                assertEquals("alpha", error("aten::add.Tensor", new Object[] {c, c}, Map.of("alpha", Scalar.of(1000L))).argument());
            }
        }
        // bool tensors with an int alpha of 1 are fine (PyTorch's default alpha)
        try (Tensor bo = of(DType.BOOL, new long[] {2}, 1, 0); Tensor r = (Tensor) TestTensors.call("aten::add.Tensor", bo, bo)) {
            assertArrayEquals(new double[] {1, 0}, values(r));
        }
    }
}
