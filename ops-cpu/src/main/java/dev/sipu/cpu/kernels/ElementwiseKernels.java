package dev.sipu.cpu.kernels;

import dev.sipu.api.DType;
import dev.sipu.api.Scalar;
import dev.sipu.api.Tensor;
import dev.sipu.dispatch.Call;
import dev.sipu.dispatch.DispatchKey;
import dev.sipu.dispatch.meta.Broadcast;
import dev.sipu.dispatch.meta.ElementwiseMeta;
import dev.sipu.dispatch.spi.Registrar;
import jdk.incubator.vector.FloatVector;

/** Arithmetic and activation kernels: each op is its function, the loops are shared. */
public final class ElementwiseKernels {
    private ElementwiseKernels() {}

    public static void register(Registrar r) {
        r.register("aten::add.Tensor", DispatchKey.CPU, c -> addSub(c, 1));
        r.register("aten::sub.Tensor", DispatchKey.CPU, c -> addSub(c, -1));
        r.register("aten::mul.Tensor", DispatchKey.CPU, c -> binary(c, ElementwiseMeta.promote(c, c.tensor(0), c.tensor(1)), MUL));
        r.register("aten::div.Tensor", DispatchKey.CPU, c -> binary(c, ElementwiseMeta.div(c, c.tensor(0), c.tensor(1)), DIV));
        r.register("aten::neg", DispatchKey.CPU, c -> {
            if (c.tensor(0).dtype().isBool()) {
                throw c.error(0, "negation, the `-` operator, on a bool tensor is not supported; use `~` or `logical_not()` instead");
            }
            return unary(c, c.tensor(0).dtype(), NEG);
        });
        r.register("aten::sigmoid", DispatchKey.CPU, c -> unary(c, ElementwiseMeta.floatUnary(c.tensor(0)), SIGMOID));
        r.register("aten::silu", DispatchKey.CPU, c -> unary(c, ElementwiseMeta.floatUnary(c.tensor(0)), SILU));
    }

    private static Tensor addSub(Call c, int sign) {
        Tensor a = c.tensor(0), b = c.tensor(1);
        Scalar alpha = c.scalar(2);
        DType result = ElementwiseMeta.addSub(c, a, b, alpha);
        double fa = sign * alpha.toDouble();
        long la = sign * alpha.toLong();
        boolean plainAdd = sign > 0 && fa == 1;
        float va = (float) fa;
        return binary(c, result, new Loops.Binary() {
            public double applyDouble(double x, double y) { return x + fa * y; }
            public long applyLong(long x, long y) { return x + la * y; }
            public boolean applyBool(boolean x, boolean y) { return x || (y && alpha.toLong() != 0); }
            public FloatVector applyVector(FloatVector x, FloatVector y) {
                return plainAdd ? x.add(y) : x.add(y.mul(va));
            }
        });
    }

    private static Tensor binary(Call c, DType result, Loops.Binary f) {
        Tensor a = c.tensor(0), b = c.tensor(1);
        long[] shape = Broadcast.shape(c, 0, 1);
        Tensor out = c.dispatcher().empty(shape, result, c.device());
        try (Tensor ea = Broadcast.expand(a, shape); Tensor eb = Broadcast.expand(b, shape)) {
            Loops.binary(out, ea, eb, f);
            return out;
        } catch (RuntimeException e) {
            out.close();
            throw e;
        }
    }

    private static Tensor unary(Call c, DType result, Loops.Unary f) {
        Tensor a = c.tensor(0);
        Tensor out = c.dispatcher().empty(a.sizes(), result, c.device());
        Loops.unary(out, a, f);
        return out;
    }

    static final Loops.Binary MUL = new Loops.Binary() {
        public double applyDouble(double x, double y) { return x * y; }
        public long applyLong(long x, long y) { return x * y; }
        public boolean applyBool(boolean x, boolean y) { return x && y; }
        public FloatVector applyVector(FloatVector x, FloatVector y) { return x.mul(y); }
    };

    static final Loops.Binary DIV = new Loops.Binary() {
        public double applyDouble(double x, double y) { return x / y; }
        public long applyLong(long x, long y) { throw new IllegalStateException("true division never has an integer result"); }
        public boolean applyBool(boolean x, boolean y) { throw new IllegalStateException("true division never has a bool result"); }
        public FloatVector applyVector(FloatVector x, FloatVector y) { return x.div(y); }
    };

    static final Loops.Unary NEG = new Loops.Unary() {
        public double applyDouble(double x) { return -x; }
        public long applyLong(long x) { return -x; }
        public FloatVector applyVector(FloatVector x) { return x.neg(); }
    };

    /** Computed in float32 as PyTorch does for float, half and bfloat16 (double for float64). */
    static final Loops.Unary SIGMOID = new Loops.Unary() {
        public double applyDouble(double x) { return 1.0 / (1.0 + Math.exp(-x)); }
        public long applyLong(long x) { throw new IllegalStateException("sigmoid has a float result"); }
        public FloatVector applyVector(FloatVector x) { return Loops.sigmoid(x); }
    };

    static final Loops.Unary SILU = new Loops.Unary() {
        public double applyDouble(double x) { return x / (1.0 + Math.exp(-x)); }
        public long applyLong(long x) { throw new IllegalStateException("silu has a float result"); }
        public FloatVector applyVector(FloatVector x) { return x.div(x.neg().lanewise(jdk.incubator.vector.VectorOperators.EXP).add(1f)); }
    };
}
