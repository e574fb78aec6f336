package dev.sipu.cpu.kernels;

import dev.sipu.api.DType;
import dev.sipu.api.Elements;
import dev.sipu.api.Scalar;
import dev.sipu.api.Tensor;
import dev.sipu.cpu.iter.TensorIter;
import dev.sipu.cpu.loops.BinaryOp;
import dev.sipu.cpu.loops.Pointwise;
import dev.sipu.cpu.loops.UnaryOp;
import dev.sipu.dispatch.Call;
import dev.sipu.dispatch.meta.ElementwiseMeta;
import dev.sipu.dispatch.meta.PointwiseMeta;
import dev.sipu.dispatch.meta.ScalarCast;
import dev.sipu.dispatch.spi.Registrar;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.function.LongPredicate;

import static dev.sipu.dispatch.DispatchKey.CPU;

/**
 * Comparisons, bitwise ops, powers, float functions, clamp, where and masked_fill_: each a function
 * in the three compute types of {@link Pointwise} over the shared meta of {@link PointwiseMeta}.
 */
public final class PointwiseKernels {
    private PointwiseKernels() {}

    private interface FloatCompare { boolean test(float a, float b); }
    private interface DoubleCompare { boolean test(double a, double b); }
    private interface LongCompare { boolean test(long a, long b); }

    private static BinaryOp compare(FloatCompare f, DoubleCompare d, LongCompare l) {
        return new BinaryOp((x, y, out, n) -> {
            for (int i = 0; i < n; i++) out[i] = f.test(x[i], y[i]) ? 1f : 0f;
        }, (a, b) -> d.test(a, b) ? 1 : 0, (a, b) -> l.test(a, b) ? 1 : 0);
    }

    static final BinaryOp EQ = compare((a, b) -> a == b, (a, b) -> a == b, (a, b) -> a == b);
    static final BinaryOp LT = compare((a, b) -> a < b, (a, b) -> a < b, (a, b) -> a < b);
    static final BinaryOp LE = compare((a, b) -> a <= b, (a, b) -> a <= b, (a, b) -> a <= b);
    static final BinaryOp GT = compare((a, b) -> a > b, (a, b) -> a > b, (a, b) -> a > b);
    static final BinaryOp GE = compare((a, b) -> a >= b, (a, b) -> a >= b, (a, b) -> a >= b);
    static final BinaryOp AND = new BinaryOp(null, null, (a, b) -> a & b);
    static final BinaryOp OR = new BinaryOp(null, null, (a, b) -> a | b);
    static final BinaryOp FLOOR_DIVIDE = new BinaryOp((x, y, out, n) -> {
        for (int i = 0; i < n; i++) out[i] = (float) floorDivide(x[i], y[i]);
    }, PointwiseKernels::floorDivide, PointwiseKernels::floorDivide);
    static final BinaryOp POW = new BinaryOp((x, y, out, n) -> {
        for (int i = 0; i < n; i++) out[i] = pow(x[i], y[i]);
    }, Math::pow, PointwiseKernels::pow);
    static final UnaryOp COS = new UnaryOp((x, out, n) -> {
        for (int i = 0; i < n; i++) out[i] = (float) Math.cos(x[i]);
    }, Math::cos, null);
    static final UnaryOp SIN = new UnaryOp((x, out, n) -> {
        for (int i = 0; i < n; i++) out[i] = (float) Math.sin(x[i]);
    }, Math::sin, null);
    /** {@code 1 / sqrt(x)} with both steps rounded to fp32, as PyTorch's vectorized rsqrt. */
    static final UnaryOp RSQRT = new UnaryOp((x, out, n) -> {
        for (int i = 0; i < n; i++) out[i] = 1f / (float) Math.sqrt(x[i]);
    }, x -> 1 / Math.sqrt(x), null);
    static final UnaryOp RECIPROCAL = new UnaryOp((x, out, n) -> {
        for (int i = 0; i < n; i++) out[i] = 1f / x[i];
    }, x -> 1 / x, null);

    public static void register(Registrar r) {
        compare(r, "eq", EQ);
        compare(r, "lt", LT);
        compare(r, "le", LE);
        compare(r, "gt", GT);
        compare(r, "ge", GE);
        r.register("aten::bitwise_and.Tensor", CPU, c -> binary(PointwiseMeta.bitwise(c), AND));
        r.register("aten::bitwise_or.Tensor", CPU, c -> binary(PointwiseMeta.bitwise(c), OR));
        r.register("aten::bitwise_not", CPU, c -> {
            ElementwiseMeta m = PointwiseMeta.bitwiseNot(c);
            boolean bool = m.commonDtype().isBool();
            return unary(m, new UnaryOp(null, null, x -> bool ? (x == 0 ? 1 : 0) : ~x));
        });
        r.register("aten::floor_divide", CPU, c -> {
            ElementwiseMeta m = PointwiseMeta.floorDivide(c);
            if (!m.commonDtype().isFloatingPoint()) refuse(c, m, 1, v -> v == 0, "ZeroDivisionError");
            return binary(m, FLOOR_DIVIDE);
        });
        for (String pow : new String[] {"aten::pow.Scalar", "aten::pow.Tensor_Scalar", "aten::pow.Tensor_Tensor_out"}) {
            r.register(pow, CPU, c -> {
                ElementwiseMeta m = PointwiseMeta.pow(c);
                if (!m.commonDtype().isFloatingPoint()) {
                    refuse(c, m, 1, v -> v < 0, "Integers to negative integer powers are not allowed.");
                }
                return binary(m, POW);
            });
        }
        r.register("aten::rsub.Scalar", CPU, PointwiseKernels::rsub);
        r.register("aten::div_.Tensor", CPU, c -> binary(PointwiseMeta.divInPlace(c), ElementwiseKernels.DIV));
        r.register("aten::cos", CPU, c -> unary(PointwiseMeta.floatFunction(c), COS));
        r.register("aten::sin", CPU, c -> unary(PointwiseMeta.floatFunction(c), SIN));
        r.register("aten::rsqrt", CPU, c -> unary(PointwiseMeta.floatFunction(c), RSQRT));
        r.register("aten::reciprocal", CPU, c -> unary(PointwiseMeta.floatFunction(c), RECIPROCAL));
        r.register("aten::clamp", CPU, PointwiseKernels::clamp);
        r.register("aten::where.self", CPU, PointwiseKernels::where);
        r.register("aten::masked_fill_.Scalar", CPU, PointwiseKernels::maskedFill);
    }

    private static void compare(Registrar r, String name, BinaryOp op) {
        r.register("aten::" + name + ".Tensor", CPU, c -> binary(PointwiseMeta.compare(c), op));
        r.register("aten::" + name + ".Scalar", CPU, c -> binary(PointwiseMeta.compare(c), op));
    }

    private static Tensor unary(ElementwiseMeta m, UnaryOp op) {
        try (m) {
            Pointwise.unary(m, op);
            return m.takeOutput();
        }
    }

    private static Tensor binary(ElementwiseMeta m, BinaryOp op) {
        try (m) {
            Pointwise.binary(m, op);
            return m.takeOutput();
        }
    }

    /** {@code other - alpha * self}: PyTorch's sub with the operands swapped, i.e. add with -alpha. */
    private static Tensor rsub(Call c) {
        try (ElementwiseMeta m = PointwiseMeta.rsub(c)) {
            Scalar alpha = c.scalar(2);
            Scalar negated = alpha.isFloatingPoint() ? Scalar.of(-alpha.toDouble()) : Scalar.of(-alpha.toLong());
            BinaryOp add = ElementwiseKernels.addScaled(ScalarCast.to(c, 2, negated, m.commonDtype()));
            Pointwise.binary(m, new BinaryOp((x, y, out, n) -> add.f32().apply(y, x, out, n),
                    (x, y) -> add.f64().applyAsDouble(y, x), (x, y) -> add.i64().applyAsLong(y, x)));
            return m.takeOutput();
        }
    }

    /** NaN inputs stay NaN; a NaN bound gives NaN (C's sipu_clamp has the same rule). */
    private static Tensor clamp(Call c) {
        try (ElementwiseMeta m = PointwiseMeta.clamp(c)) {
            Scalar lo = PointwiseMeta.clampBound(c, 1, m), hi = PointwiseMeta.clampBound(c, 2, m);
            double dlo = lo == null ? Double.NEGATIVE_INFINITY : lo.toDouble();
            double dhi = hi == null ? Double.POSITIVE_INFINITY : hi.toDouble();
            long llo = lo == null ? Long.MIN_VALUE : lo.toLong(), lhi = hi == null ? Long.MAX_VALUE : hi.toLong();
            float flo = (float) dlo, fhi = (float) dhi;
            Pointwise.unary(m, new UnaryOp((x, out, n) -> {
                for (int i = 0; i < n; i++) out[i] = (float) clamp(x[i], flo, fhi);
            }, x -> clamp(x, dlo, dhi), x -> Math.min(Math.max(x, llo), lhi)));
            return m.takeOutput();
        }
    }

    private static double clamp(double x, double lo, double hi) {
        if (Double.isNaN(x)) return x;
        if (x < lo || Double.isNaN(lo)) x = lo;
        if (x > hi || Double.isNaN(hi)) x = hi;
        return x;
    }

    /** Per element: the chosen operand converted to the output dtype (bytes copied when the dtypes agree). */
    private static Tensor where(Call c) {
        try (ElementwiseMeta m = PointwiseMeta.where(c)) {
            Tensor out = m.output();
            DType to = out.dtype(), ta = m.input(1).dtype(), tb = m.input(2).dtype();
            TensorIter.of(out, m.inputs()).forEach(() -> (data, off, st, n) -> {
                for (long i = 0; i < n; i++) {
                    boolean pick = data[1].get(ValueLayout.JAVA_BYTE, off[1] + i * st[1]) != 0;
                    int k = pick ? 2 : 3;
                    convert(data[k], off[k] + i * st[k], pick ? ta : tb, data[0], off[0] + i * st[0], to);
                }
            });
            return m.takeOutput();
        }
    }

    private static Tensor maskedFill(Call c) {
        Tensor self = c.tensor(0);
        try (Tensor mask = PointwiseMeta.maskedFill(c)) {
            Scalar v = ScalarCast.to(c, 2, self.dtype());
            DType t = self.dtype();
            TensorIter.of(self, mask).forEach(() -> (data, off, st, n) -> {
                for (long i = 0; i < n; i++) {
                    if (data[1].get(ValueLayout.JAVA_BYTE, off[1] + i * st[1]) == 0) continue;
                    long at = off[0] + i * st[0];
                    if (t.isFloatingPoint()) Elements.putDouble(data[0], at, t, v.toDouble());
                    else Elements.putLong(data[0], at, t, v.toLong());
                }
            });
            return self;
        }
    }

    private static void convert(MemorySegment src, long from, DType ts, MemorySegment dst, long to, DType td) {
        if (ts == td) {
            MemorySegment.copy(src, from, dst, to, td.itemSize());
        } else if (td.isFloatingPoint() || ts.isFloatingPoint()) {
            Elements.putDouble(dst, to, td, Elements.getDouble(src, from, ts));
        } else {
            Elements.putLong(dst, to, td, Elements.getLong(src, from, ts));
        }
    }

    /** Throws {@code message} for argument {@code arg} when any element of the operand matches (checked before writing). */
    private static void refuse(Call c, ElementwiseMeta m, int operand, LongPredicate bad, String message) {
        Tensor t = m.original(operand);
        AtomicBoolean found = new AtomicBoolean();
        DType dt = t.dtype();
        TensorIter.of(t).forEach(() -> (data, off, st, n) -> {
            for (long i = 0; i < n && !found.get(); i++) {
                if (bad.test(ScalarCast.narrow(Elements.getLong(data[0], off[0] + i * st[0], dt), m.commonDtype()))) found.set(true);
            }
        });
        if (found.get()) {
            m.close();
            throw c.error(operand, message);
        }
    }

    /** Python's floor division of floats, as PyTorch's div_floor_floating. */
    static double floorDivide(double a, double b) {
        if (b == 0) return a / b;
        double mod = a % b;
        double div = (a - mod) / b;
        if (mod != 0 && (b < 0) != (mod < 0)) div -= 1;
        if (div == 0) return Math.copySign(0.0, a / b);
        double fl = Math.floor(div);
        return div - fl > 0.5 ? fl + 1 : fl;
    }

    static long floorDivide(long a, long b) {
        return Math.floorDiv(a, b);
    }

    private static float pow(float x, float y) {
        if (y == 2f) return x * x;
        return (float) Math.pow(x, y);
    }

    /** Integer power by squaring, wrapping as C++ does. */
    static long pow(long base, long exp) {
        long r = 1;
        while (exp > 0) {
            if ((exp & 1) != 0) r *= base;
            base *= base;
            exp >>= 1;
        }
        return r;
    }
}
