package dev.sipu.dispatch.composite;

import dev.sipu.api.DType;
import dev.sipu.api.OpNotImplementedException;
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
        r.register("aten::_scaled_mm", DispatchKey.COMPOSITE, MatmulOps::scaledMm);
    }

    /**
     * _scaled_mm(a, b, scale_a, scale_b, bias?, scale_result?, out_dtype?): out = to(out_dtype,
     * (a @ b) * scale_a * scale_b + bias) with float8 a [M, K], b [K, N] and float32 scales that are
     * tensor-wise (one element) or row-wise (scale_a [M, 1], scale_b [1, N]). The float8 operands are
     * decoded exactly to float32 and multiplied by the device's fp32 GEMM; scales and bias apply to
     * the fp32 product before the one rounding to out_dtype.
     */
    private static Tensor scaledMm(Call c) {
        Tensor a = c.tensor(0), b = c.tensor(1), sa = c.tensor(2), sb = c.tensor(3), bias = c.optTensor(4);
        if (a.dim() != 2) throw c.error(0, "mat_a must be a matrix");
        if (b.dim() != 2) throw c.error(1, "mat_b must be a matrix");
        if (!a.dtype().isFloat8() || !b.dtype().isFloat8()) throw c.error(a.dtype().isFloat8() ? 1 : 0, "expected float8 operands, got "
                + a.dtype() + " and " + b.dtype());
        long m = a.size(0), k = a.size(1), n = b.size(1);
        if (b.size(0) != k) throw c.error(1, "mat1 and mat2 shapes cannot be multiplied (" + m + "x" + k + " and " + b.size(0) + "x" + n + ")");
        checkScale(c, 2, sa, m, true);
        checkScale(c, 3, sb, n, false);
        if (c.optTensor(5) != null) throw new OpNotImplementedException(c.op(), "with scale_result (the float8-output scale)");
        DType out = c.arg(6) != null ? c.dtype(6) : a.dtype();
        if (bias != null && (bias.dim() != 1 || bias.size(0) != n)) throw c.error(4, "bias must be a vector of " + n + " elements");
        Ops ops = c.ops();
        try (Tensor af = ops.toDtype(a, DType.FLOAT32); Tensor bf = ops.toDtype(b, DType.FLOAT32); Tensor p = ops.mm(af, bf);
             Tensor pa = ops.mul(p, sa); Tensor pab = ops.mul(pa, sb);
             Tensor biased = bias == null ? ViewOps.alias(pab) : addBias(ops, pab, bias)) {
            return ops.toDtype(biased, out);
        }
    }

    private static Tensor addBias(Ops ops, Tensor x, Tensor bias) {
        try (Tensor bf = ops.toDtype(bias, DType.FLOAT32)) {
            return ops.add(x, bf);
        }
    }

    private static void checkScale(Call c, int arg, Tensor s, long rows, boolean isA) {
        if (s.dtype() != DType.FLOAT32) throw c.error(arg, "scales must be float32, got " + s.dtype());
        boolean tensorwise = s.numel() == 1;
        boolean rowwise = s.dim() == 2 && (isA ? s.size(0) == rows && s.size(1) == 1 : s.size(0) == 1 && s.size(1) == rows);
        if (!tensorwise && !rowwise) {
            throw c.error(arg, "must be one element (tensor-wise) or " + (isA ? "[" + rows + ", 1]" : "[1, " + rows + "]")
                    + " (row-wise), got " + Shapes.str(s.sizes()));
        }
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
