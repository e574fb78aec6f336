package dev.sipu.dispatch.composite;

import dev.sipu.api.Shapes;
import dev.sipu.api.Tensor;
import dev.sipu.dispatch.Call;
import dev.sipu.dispatch.DispatchKey;
import dev.sipu.dispatch.Ops;
import dev.sipu.dispatch.spi.Registrar;

import java.util.Arrays;

/** {@code linear} and {@code matmul}, which PyTorch defines by {@code mm}/{@code bmm} on folded shapes. */
final class MatmulOps {
    private MatmulOps() {}

    static void register(Registrar r) {
        r.register("aten::linear", DispatchKey.COMPOSITE, MatmulOps::linear);
        r.register("aten::matmul", DispatchKey.COMPOSITE, c -> matmul(c, c.tensor(0), c.tensor(1)));
    }

    private static Tensor linear(Call c) {
        Tensor x = c.tensor(0), w = c.tensor(1), bias = c.optTensor(2);
        if (w.dim() != 2) throw c.error(1, "weight must be 2-D, got " + w.dim() + "-D");
        Ops ops = c.ops();
        try (Tensor wt = ops.t(w); Tensor y = matmul(c, x, wt)) {
            return bias == null ? ViewOps.alias(y) : ops.add(y, bias);
        }
    }

    /** torch.matmul: 1-D operands are promoted and squeezed back, batches broadcast. */
    static Tensor matmul(Call c, Tensor a, Tensor b) {
        Ops ops = c.ops();
        int da = a.dim(), db = b.dim();
        if (da == 0 || db == 0) {
            throw c.error(da == 0 ? 0 : 1, "both arguments to matmul need to be at least 1D, but they are " + da + "D and " + db + "D");
        }
        if (da == 1 && db == 1) {
            if (a.size(0) != b.size(0)) throw c.error(1, "inconsistent tensor size, expected tensor [" + a.size(0)
                    + "] and src [" + b.size(0) + "] to have the same number of elements, but got " + a.size(0) + " and " + b.size(0) + " elements respectively");
            try (Tensor a2 = ops.unsqueeze(a, 0); Tensor b2 = ops.unsqueeze(b, 1); Tensor m = ops.mm(a2, b2)) {
                return ops.reshape(m);
            }
        }
        if (da <= 2 && db <= 2) {
            try (Tensor a2 = da == 1 ? ops.unsqueeze(a, 0) : ViewOps.alias(a);
                 Tensor b2 = db == 1 ? ops.unsqueeze(b, 1) : ViewOps.alias(b);
                 Tensor m = ops.mm(a2, b2)) {
                if (da == 1) return ops.squeeze(m, 0);
                if (db == 1) return ops.squeeze(m, 1);
                return ViewOps.alias(m);
            }
        }
        if (da >= 3 && db <= 2) {
            // Fold a's batch dimensions into the rows of one mm.
            long[] as = a.sizes();
            long k = as[da - 1];
            long[] outShape = Arrays.copyOf(as, db == 1 ? da - 1 : da);
            try (Tensor b2 = db == 1 ? ops.unsqueeze(b, 1) : ViewOps.alias(b);
                 Tensor a2 = ViewOps.reshape(c, a, new long[] {-1, k});
                 Tensor m = ops.mm(a2, b2)) {
                if (db == 2) outShape[da - 1] = b.size(1);
                return ViewOps.reshape(c, m, outShape);
            }
        }
        // General batched case: broadcast batch dims, run one bmm.
        try (Tensor a1 = da == 1 ? ops.unsqueeze(a, 0) : ViewOps.alias(a);
             Tensor b1 = db == 1 ? ops.unsqueeze(b, 1) : ViewOps.alias(b)) {
            long[] as = a1.sizes(), bs = b1.sizes();
            long n = as[as.length - 2], k = as[as.length - 1], k2 = bs[bs.length - 2], p = bs[bs.length - 1];
            long[] batchA = Arrays.copyOf(as, as.length - 2), batchB = Arrays.copyOf(bs, bs.length - 2);
            long[] batch = Shapes.broadcast(batchA, batchB);
            if (batch == null) throw c.error(1, "batch dimensions " + Arrays.toString(batchA) + " and " + Arrays.toString(batchB) + " do not broadcast");
            if (k != k2) throw c.error(1, "mat1 and mat2 shapes cannot be multiplied (" + n + "x" + k + " and " + k2 + "x" + p + ")");
            long nb = Shapes.numel(batch);
            long[] ea = concat(batch, n, k), eb = concat(batch, k2, p);
            try (Tensor ax = ops.expand(a1, ea); Tensor bx = ops.expand(b1, eb);
                 Tensor a3 = ViewOps.reshape(c, ax, new long[] {nb, n, k});
                 Tensor b3 = ViewOps.reshape(c, bx, new long[] {nb, k, p});
                 Tensor m = ops.bmm(a3, b3)) {
                long[] out = concat(batch, n, p);
                if (da == 1) out = dropAt(out, out.length - 2);
                if (db == 1) out = dropAt(out, out.length - 1);
                return ViewOps.reshape(c, m, out);
            }
        }
    }

    private static long[] concat(long[] batch, long x, long y) {
        long[] out = Arrays.copyOf(batch, batch.length + 2);
        out[batch.length] = x;
        out[batch.length + 1] = y;
        return out;
    }

    private static long[] dropAt(long[] x, int i) {
        long[] out = new long[x.length - 1];
        System.arraycopy(x, 0, out, 0, i);
        System.arraycopy(x, i + 1, out, i, x.length - i - 1);
        return out;
    }
}
