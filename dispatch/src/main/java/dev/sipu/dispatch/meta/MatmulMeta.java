package dev.sipu.dispatch.meta;

import dev.sipu.api.DType;
import dev.sipu.api.Tensor;
import dev.sipu.dispatch.Call;

/** Shape and dtype checks of mm and bmm, with PyTorch's messages; the output is a new contiguous tensor of the inputs' dtype. */
public final class MatmulMeta {
    private MatmulMeta() {}

    /** mm(self [M, K], mat2 [K, N]): the output shape [M, N]. */
    public static long[] mm(Call c, Tensor a, Tensor b) {
        if (a.dim() != 2) throw c.error(0, "self must be a matrix");
        if (b.dim() != 2) throw c.error(1, "mat2 must be a matrix");
        if (a.dtype() != b.dtype()) {
            throw c.error(1, "expected m1 and m2 to have the same dtype, but got: " + a.dtype() + " != " + b.dtype());
        }
        checkDtype(c, a);
        if (a.size(1) != b.size(0)) {
            throw c.error(1, "mat1 and mat2 shapes cannot be multiplied (" + a.size(0) + "x" + a.size(1) + " and "
                    + b.size(0) + "x" + b.size(1) + ")");
        }
        return new long[] {a.size(0), b.size(1)};
    }

    /** bmm(self [B, M, K], mat2 [B, K, N]): the output shape [B, M, N]. */
    public static long[] bmm(Call c, Tensor a, Tensor b) {
        if (a.dim() != 3) throw c.error(0, "batch1 must be a 3D tensor");
        if (b.dim() != 3) throw c.error(1, "batch2 must be a 3D tensor");
        if (a.dtype() != b.dtype()) {
            throw c.error(1, "expected batch1 and batch2 to have the same dtype, but got: " + a.dtype() + " != " + b.dtype());
        }
        checkDtype(c, a);
        if (b.size(0) != a.size(0) || b.size(1) != a.size(2)) {
            throw c.error(1, "Expected size for first two dimensions of batch2 tensor to be: [" + a.size(0) + ", "
                    + a.size(2) + "] but got: [" + b.size(0) + ", " + b.size(1) + "].");
        }
        return new long[] {a.size(0), a.size(1), b.size(2)};
    }

    /** The checked output of an {@code aten::mm}, {@code mm.dtype} or {@code bmm} call (self = argument 0, mat2 = 1), new on the call's device. */
    public static Tensor output(Call c) {
        long[] shape = c.op().equals("aten::bmm") ? bmm(c, c.tensor(0), c.tensor(1)) : mm(c, c.tensor(0), c.tensor(1));
        return c.dispatcher().empty(shape, outDtype(c), c.device());
    }

    /**
     * The result dtype: the inputs' own, or for {@code mm.dtype(self, mat2, out_dtype)} out_dtype,
     * which may only widen f16/bf16 inputs to float32 (fp32 accumulation and output, as DeepSeek
     * V3.2's indexer uses it).
     */
    public static DType outDtype(Call c) {
        DType in = c.tensor(0).dtype();
        if (!c.op().equals("aten::mm.dtype")) return in;
        DType out = c.dtype(2);
        if (out != in && !(out == DType.FLOAT32 && (in == DType.FLOAT16 || in == DType.BFLOAT16))) {
            throw c.error(2, "out_dtype must be the same as input dtype or fp32 for fp16/bf16 inputs");
        }
        return out;
    }

    /** PyTorch multiplies every float and integer dtype, but not bool or float8 (those need _scaled_mm). */
    private static void checkDtype(Call c, Tensor a) {
        if (a.dtype().isBool() || a.dtype().isFloat8()) {
            throw c.error(0, "\"" + c.op() + "\" not implemented for '" + a.dtype() + "'");
        }
    }
}
