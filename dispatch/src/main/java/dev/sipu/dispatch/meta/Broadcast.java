package dev.sipu.dispatch.meta;

import dev.sipu.api.Shapes;
import dev.sipu.api.Tensor;
import dev.sipu.dispatch.Call;

import java.util.Arrays;

/** Broadcasting of elementwise operands, shared by every device. */
public final class Broadcast {
    private Broadcast() {}

    /** The broadcast shape of the tensor arguments {@code args} of a call, or an error naming the one that does not fit. */
    public static long[] shape(Call c, int... args) {
        long[] shape = null;
        for (int i : args) {
            Tensor t = c.optTensor(i);
            if (t == null) continue;
            if (shape == null) {
                shape = t.sizes();
                continue;
            }
            long[] b = Shapes.broadcast(shape, t.sizes());
            if (b == null) {
                throw c.error(i, "the size of tensor " + c.name(i) + " " + Arrays.toString(t.sizes())
                        + " does not broadcast with " + Arrays.toString(shape));
            }
            shape = b;
        }
        return shape == null ? new long[0] : shape;
    }

    /** Strides of {@code t} viewed with {@code shape} (0 on broadcast dimensions). */
    public static long[] strides(Tensor t, long[] shape) {
        long[] s = Shapes.expandStrides(t.sizes(), t.strides(), shape);
        if (s == null) throw new IllegalArgumentException(t + " does not broadcast to " + Arrays.toString(shape));
        return s;
    }

    /** A view of {@code t} expanded to {@code shape}; the caller closes it. */
    public static Tensor expand(Tensor t, long[] shape) {
        return t.asStrided(shape, strides(t, shape), t.offset());
    }
}
