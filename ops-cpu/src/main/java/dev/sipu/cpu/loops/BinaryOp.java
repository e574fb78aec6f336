package dev.sipu.cpu.loops;

import java.util.function.DoubleBinaryOperator;
import java.util.function.LongBinaryOperator;

/**
 * A binary elementwise function, given once per compute type (see {@link Pointwise}): fp32 on tiles
 * of floats (a {@link dev.sipu.cpu.simd.Vec} primitive), fp64 and int64 per element. A form the op
 * has no use for is null; its meta never selects it.
 */
public record BinaryOp(Tile f32, DoubleBinaryOperator f64, LongBinaryOperator i64) {

    /** {@code out[i] = f(x[i], y[i])} for i below {@code Vec.padded(n)}. */
    @FunctionalInterface
    public interface Tile {
        void apply(float[] x, float[] y, float[] out, int n);
    }
}
