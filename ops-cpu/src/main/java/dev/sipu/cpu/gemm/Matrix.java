package dev.sipu.cpu.gemm;

import dev.sipu.api.DType;
import dev.sipu.api.Tensor;

import java.lang.foreign.MemorySegment;

/**
 * A batch of matrix operands in CPU memory: element (b, i, j) of {@code dtype} lives at byte
 * {@code offset + b*batchStride + i*rowStride + j*colStride} of {@code memory}. Any strides:
 * transposed and broadcast operands need no copy.
 */
public record Matrix(DType dtype, MemorySegment memory, long offset, long batchStride, long rowStride, long colStride,
                     int rows, int cols) {

    /** A 2-D tensor [rows, cols] or a 3-D tensor [batch, rows, cols]. */
    public static Matrix of(Tensor t) {
        int d = t.dim();
        long item = t.dtype().itemSize();
        long batchStride = d == 3 ? t.stride(0) * item : 0;
        return new Matrix(t.dtype(), t.storage().memory(), t.byteOffset(), batchStride,
                t.stride(d - 2) * item, t.stride(d - 1) * item,
                Math.toIntExact(t.size(d - 2)), Math.toIntExact(t.size(d - 1)));
    }

    /** Byte offset of element (i, j) of batch b. */
    public long at(int b, int i, int j) {
        return offset + b * batchStride + i * rowStride + j * colStride;
    }
}
