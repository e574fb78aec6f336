package dev.sipu.dispatch.meta;

import dev.sipu.api.Tensor;
import dev.sipu.dispatch.Call;

import java.util.Arrays;

/**
 * Checks of vLLM's row-wise ops (SEMANTICS.md §1 and §3), shared by every device, and the row
 * geometry of their {@code [..., H]} operands: rows are the elements of the leading dimensions in
 * row-major order, each a contiguous run of H elements.
 */
public final class NormMeta {
    private NormMeta() {}

    private static boolean floatType(Tensor t) {
        return switch (t.dtype()) {
            case FLOAT32, FLOAT16, BFLOAT16 -> true;
            default -> false;
        };
    }

    /**
     * {@code rms_norm(result, input [..., H], weight [H], epsilon)}: input fp32/fp16/bf16 with a
     * contiguous last dimension (its rows may be spaced apart), weight [H] contiguous of the input's
     * dtype, result of the input's shape and dtype and fully contiguous. Returns H.
     */
    public static long rmsNorm(Call c, int out, int input, int weight) {
        Tensor o = c.tensor(out), x = c.tensor(input), w = c.tensor(weight);
        if (x.dim() == 0) throw c.error(input, "must have at least one dimension");
        if (!floatType(x)) throw c.error(input, "dtype " + x.dtype() + " is not supported (float32, float16, bfloat16)");
        long h = x.size(-1);
        if (x.stride(-1) != 1 && h > 1) throw c.error(input, "last dimension must be contiguous (stride 1), got stride " + x.stride(-1));
        if (w.dim() != 1 || w.size(0) != h) {
            throw c.error(weight, "expected shape [" + h + "], got " + Arrays.toString(w.sizes()));
        }
        if (w.dtype() != x.dtype()) throw c.error(weight, "dtype " + w.dtype() + " differs from input's " + x.dtype());
        if (!w.isContiguous()) throw c.error(weight, "must be contiguous");
        sameShape(c, out, o, x);
        if (!o.isContiguous()) throw c.error(out, "must be contiguous");
        return h;
    }

    /**
     * {@code silu_and_mul(result [..., d], input [..., 2d])}: fp32/fp16/bf16 of one dtype, result
     * contiguous; the input needs only a contiguous last dimension (its rows may be spaced apart, a
     * column slice of a wider tensor, as rms_norm's), which both devices' kernels read row by row.
     * Returns d.
     */
    public static long siluAndMul(Call c, int out, int input) {
        Tensor o = c.tensor(out), x = c.tensor(input);
        if (x.dim() == 0) throw c.error(input, "must have at least one dimension");
        if (!floatType(x)) throw c.error(input, "dtype " + x.dtype() + " is not supported (float32, float16, bfloat16)");
        long twoD = x.size(-1);
        if (twoD % 2 != 0) throw c.error(input, "last dimension must be even, got " + twoD);
        long[] expect = x.sizes();
        expect[expect.length - 1] = twoD / 2;
        if (!Arrays.equals(o.sizes(), expect)) {
            throw c.error(out, "expected shape " + Arrays.toString(expect) + ", got " + Arrays.toString(o.sizes()));
        }
        if (o.dtype() != x.dtype()) throw c.error(out, "dtype " + o.dtype() + " differs from input's " + x.dtype());
        if (!o.isContiguous()) throw c.error(out, "must be contiguous");
        if (x.stride(-1) != 1 && twoD > 1) throw c.error(input, "last dimension must be contiguous (stride 1), got stride " + x.stride(-1));
        return twoD / 2;
    }

    static void sameShape(Call c, int out, Tensor o, Tensor x) {
        if (!Arrays.equals(o.sizes(), x.sizes())) {
            throw c.error(out, "expected shape " + Arrays.toString(x.sizes()) + ", got " + Arrays.toString(o.sizes()));
        }
        if (o.dtype() != x.dtype()) throw c.error(out, "dtype " + o.dtype() + " differs from input's " + x.dtype());
    }

    /** Number of rows of a {@code [..., H]} tensor: the product of its leading dimensions. */
    public static long rows(Tensor t) {
        long n = 1;
        for (int d = 0; d < t.dim() - 1; d++) n *= t.size(d);
        return n;
    }

    /** Storage offset (in elements) of the first element of row {@code row} of a {@code [..., H]} tensor. */
    public static long rowOffset(Tensor t, long row) {
        long off = t.offset();
        for (int d = t.dim() - 2; d >= 0; d--) {
            long s = t.size(d);
            off += (row % s) * t.stride(d);
            row /= s;
        }
        return off;
    }
}
