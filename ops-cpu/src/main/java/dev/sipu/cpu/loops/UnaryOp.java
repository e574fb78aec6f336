package dev.sipu.cpu.loops;

import java.util.function.DoubleUnaryOperator;
import java.util.function.LongUnaryOperator;

/**
 * A unary elementwise function, given once per compute type (see {@link Pointwise}): fp32 on a tile
 * of floats (a {@link dev.sipu.cpu.simd.Vec} primitive), fp64 and int64 per element. A form the op
 * has no use for (int64 for {@code sigmoid}) is null; its meta never selects it.
 */
public record UnaryOp(Tile f32, DoubleUnaryOperator f64, LongUnaryOperator i64) {

    /** {@code out[i] = f(x[i])} for i below {@code Vec.padded(n)}. */
    @FunctionalInterface
    public interface Tile {
        void apply(float[] x, float[] out, int n);
    }
}
