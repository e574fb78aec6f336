package dev.sipu.dispatch;

/**
 * An op's implementation for one dispatch key. It receives the bound call (every argument present,
 * in schema order) and returns the op's result: a Tensor, a {@code List<Tensor>} for tuples and
 * tensor lists, a Scalar or DType, or null for ops that return nothing.
 */
@FunctionalInterface
public interface Kernel {
    Object run(Call call);
}
