package dev.sipu.cpu.simd;

import jdk.incubator.vector.DoubleVector;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorMask;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

/**
 * The fp32 vector primitives every CPU kernel is built from (ggml's {@code vec.h}): one small loop
 * each over float arrays, in {@link #S}-wide lanes.
 *
 * <p>Arrays are padded to a multiple of {@link #LANES} ({@link #padded}) and the maps run whole
 * vectors over the padding, so every element, the last one included, takes the same vector code
 * (no scalar tail whose {@code exp} rounds differently). Lanes past {@code n} hold garbage that no
 * caller reads. Reductions mask their last vector instead.
 *
 * <p>Why a loop per primitive and not one loop taking a lambda: the JIT compiles a shared loop once,
 * its call site sees every op and stops inlining, and a FloatVector that crosses a call it cannot
 * inline is boxed and loses its intrinsics (measured ~20x slower). A static method per primitive
 * is always inlined into its caller's loop.
 */
public final class Vec {
    private Vec() {}

    public static final VectorSpecies<Float> S = FloatVector.SPECIES_PREFERRED;
    public static final int LANES = S.length();

    /** {@code n} rounded up to whole vectors: the length of a float array the maps may fill. */
    public static int padded(int n) {
        return (n + LANES - 1) / LANES * LANES;
    }

    private static FloatVector v(float[] a, int i) { return FloatVector.fromArray(S, a, i); }

    // ---- maps: out[i] = f(x[i], ...) for i < padded(n); out may be one of the inputs ------------

    public static void add(float[] x, float[] y, float[] out, int n) {
        for (int i = 0; i < n; i += LANES) v(x, i).add(v(y, i)).intoArray(out, i);
    }

    /** {@code x + alpha * y} with one rounding (PyTorch's vectorized add uses fmadd). */
    public static void addScaled(float[] x, float[] y, float alpha, float[] out, int n) {
        if (alpha == 1f) {
            add(x, y, out, n);
            return;
        }
        FloatVector a = FloatVector.broadcast(S, alpha);
        for (int i = 0; i < n; i += LANES) v(y, i).fma(a, v(x, i)).intoArray(out, i);
    }

    public static void mul(float[] x, float[] y, float[] out, int n) {
        for (int i = 0; i < n; i += LANES) v(x, i).mul(v(y, i)).intoArray(out, i);
    }

    public static void div(float[] x, float[] y, float[] out, int n) {
        for (int i = 0; i < n; i += LANES) v(x, i).div(v(y, i)).intoArray(out, i);
    }

    public static void scale(float[] x, float s, float[] out, int n) {
        for (int i = 0; i < n; i += LANES) v(x, i).mul(s).intoArray(out, i);
    }

    public static void divBy(float[] x, float s, float[] out, int n) {
        for (int i = 0; i < n; i += LANES) v(x, i).div(s).intoArray(out, i);
    }

    public static void neg(float[] x, float[] out, int n) {
        for (int i = 0; i < n; i += LANES) v(x, i).neg().intoArray(out, i);
    }

    /** {@code 1 / (1 + exp(-x))}, as PyTorch computes it in fp32. */
    public static void sigmoid(float[] x, float[] out, int n) {
        FloatVector one = FloatVector.broadcast(S, 1f);
        for (int i = 0; i < n; i += LANES) {
            one.div(one.add(v(x, i).neg().lanewise(VectorOperators.EXP))).intoArray(out, i);
        }
    }

    /** {@code x / (1 + exp(-x))}, as PyTorch and vLLM compute it in fp32. */
    public static void silu(float[] x, float[] out, int n) {
        for (int i = 0; i < n; i += LANES) {
            FloatVector a = v(x, i);
            a.div(a.neg().lanewise(VectorOperators.EXP).add(1f)).intoArray(out, i);
        }
    }

    /**
     * The rotation of a rotary embedding, pairs (x[i], y[i]) by (cos[i], sin[i]), in place:
     * {@code x' = x*c - y*s}, {@code y' = y*c + x*s}, each product rounded (no FMA), as vLLM's
     * kernel and the C kernel compute it.
     */
    public static void rotate(float[] x, float[] y, float[] cos, float[] sin, int n) {
        for (int i = 0; i < n; i += LANES) {
            FloatVector a = v(x, i), b = v(y, i), c = v(cos, i), s = v(sin, i);
            a.mul(c).sub(b.mul(s)).intoArray(x, i);
            b.mul(c).add(a.mul(s)).intoArray(y, i);
        }
    }

    // ---- reductions over exactly n elements ---------------------------------------------------

    /**
     * {@code max |x[off + i]|} over n elements, NaNs skipped and 0 when there is none (C's
     * {@code fmaxf} fold from 0, which every quantization kernel uses for its amax).
     */
    public static float absMax(float[] x, int off, int n) {
        FloatVector acc = FloatVector.zero(S);
        int i = 0;
        for (int bound = S.loopBound(n); i < bound; i += LANES) acc = acc.max(absNotNan(FloatVector.fromArray(S, x, off + i)));
        if (i < n) acc = acc.max(absNotNan(FloatVector.fromArray(S, x, off + i, S.indexInRange(i, n))));
        return acc.reduceLanes(VectorOperators.MAX);
    }

    private static FloatVector absNotNan(FloatVector a) {
        return a.abs().blend(0f, a.test(VectorOperators.IS_NAN));
    }

    /** {@code sum(x[i]^2)} in fp32, lane-wise partial sums added at the end. */
    /** Dot product of a[ao .. ao+n) and b[bo .. bo+n) in fp32 (fused multiply-adds per lane, then the lanes). */
    public static float dot(float[] a, int ao, float[] b, int bo, int n) {
        FloatVector acc = FloatVector.zero(S);
        int i = 0;
        for (int bound = S.loopBound(n); i < bound; i += LANES) {
            acc = FloatVector.fromArray(S, a, ao + i).fma(FloatVector.fromArray(S, b, bo + i), acc);
        }
        float r = acc.reduceLanes(VectorOperators.ADD);
        for (; i < n; i++) r += a[ao + i] * b[bo + i];
        return r;
    }

    private static final VectorSpecies<Double> DS = VectorSpecies.of(double.class, S.vectorShape());

    /**
     * The sum of x[i]^2 accumulated in double (each square is exact there) and rounded once: the
     * correctly rounded value whatever the order, so every vector width, thread split and device
     * gives the same rms_norm bit for bit (the C kernels do the same).
     */
    public static float sumOfSquares(float[] x, int n) {
        DoubleVector lo = DoubleVector.zero(DS), hi = DoubleVector.zero(DS);
        int i = 0;
        for (int bound = S.loopBound(n); i < bound; i += LANES) {
            FloatVector a = v(x, i);
            DoubleVector a0 = (DoubleVector) a.convertShape(VectorOperators.F2D, DS, 0);
            DoubleVector a1 = (DoubleVector) a.convertShape(VectorOperators.F2D, DS, 1);
            lo = a0.fma(a0, lo);
            hi = a1.fma(a1, hi);
        }
        double r = lo.add(hi).reduceLanes(VectorOperators.ADD);
        for (; i < n; i++) r += (double) x[i] * x[i];
        return (float) r;
    }
}
