package dev.sipu.dispatch.meta;

import dev.sipu.api.Shapes;
import dev.sipu.api.Tensor;
import dev.sipu.dispatch.Call;

import java.util.Arrays;

/** Broadcasting of elementwise operands, shared by every device. */
public final class Broadcast {
    private Broadcast() {}

    /**
     * The broadcast shape of the tensor arguments among {@code args} (others, such as Scalars and
     * None, are skipped), or PyTorch's error naming the argument and dimension that do not fit.
     */
    public static long[] shape(Call c, int... args) {
        long[] shape = null;
        for (int i : args) {
            if (!(c.arg(i) instanceof Tensor t)) continue;
            if (shape == null) {
                shape = t.sizes();
                continue;
            }
            long[] b = Shapes.broadcast(shape, t.sizes());
            if (b == null) throw mismatch(c, i, shape, t.sizes());
            shape = b;
        }
        return shape == null ? new long[0] : shape;
    }

    private static RuntimeException mismatch(Call c, int arg, long[] a, long[] b) {
        int n = Math.max(a.length, b.length);
        for (int d = n - 1; d >= 0; d--) {
            long x = d >= n - a.length ? a[d - (n - a.length)] : 1;
            long y = d >= n - b.length ? b[d - (n - b.length)] : 1;
            if (x != y && x != 1 && y != 1) {
                return c.error(arg, "The size of tensor a (" + x + ") must match the size of tensor b (" + y
                        + ") at non-singleton dimension " + d);
            }
        }
        throw new AssertionError(Arrays.toString(a) + " and " + Arrays.toString(b) + " do broadcast");
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
