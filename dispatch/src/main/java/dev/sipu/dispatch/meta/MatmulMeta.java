package dev.sipu.dispatch.meta;

import dev.sipu.api.Tensor;
import dev.sipu.dispatch.Call;

/** Shape and dtype checks of mm and bmm, with PyTorch's messages. */
public final class MatmulMeta {
    private MatmulMeta() {}

    /** mm(self [M, K], mat2 [K, N]) -> [M, N]. */
    public static long[] mm(Call c, Tensor a, Tensor b) {
        if (a.dim() != 2) throw c.error(0, "self must be a matrix, got " + a.dim() + "-D");
        if (b.dim() != 2) throw c.error(1, "mat2 must be a matrix, got " + b.dim() + "-D");
        if (a.size(1) != b.size(0)) {
            throw c.error(1, "mat1 and mat2 shapes cannot be multiplied (" + a.size(0) + "x" + a.size(1) + " and "
                    + b.size(0) + "x" + b.size(1) + ")");
        }
        if (a.dtype() != b.dtype()) {
            throw c.error(1, "expected m1 and m2 to have the same dtype, but got: " + a.dtype() + " != " + b.dtype());
        }
        return new long[] {a.size(0), b.size(1)};
    }

    /** bmm(self [B, M, K], mat2 [B, K, N]) -> [B, M, N]. */
    public static long[] bmm(Call c, Tensor a, Tensor b) {
        if (a.dim() != 3) throw c.error(0, "batch1 must be a 3D tensor, got " + a.dim() + "-D");
        if (b.dim() != 3) throw c.error(1, "batch2 must be a 3D tensor, got " + b.dim() + "-D");
        if (a.size(0) != b.size(0)) {
            throw c.error(1, "batch1 and batch2 must have same number of batches, got " + a.size(0) + " and " + b.size(0));
        }
        if (a.size(2) != b.size(1)) {
            throw c.error(1, "Expected size for first two dimensions of batch2 tensor to be: [" + a.size(0) + ", "
                    + a.size(2) + "] but got: [" + b.size(0) + ", " + b.size(1) + "].");
        }
        if (a.dtype() != b.dtype()) {
            throw c.error(1, "expected scalar type " + a.dtype() + " but found " + b.dtype());
        }
        return new long[] {a.size(0), a.size(1), b.size(2)};
    }
}
