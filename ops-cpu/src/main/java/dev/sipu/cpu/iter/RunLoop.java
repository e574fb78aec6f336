package dev.sipu.cpu.iter;

import java.lang.foreign.MemorySegment;

/**
 * The inner loop of a kernel over one 1-D run of a {@link TensorIter}: {@code n} elements, operand
 * {@code k} (0 = the output) starting {@code offsets[k]} bytes into {@code data[k]} and stepping
 * {@code strides[k]} bytes (0 for a broadcast operand). The arrays are the iterator's: read them,
 * do not keep or change them.
 */
@FunctionalInterface
public interface RunLoop {
    void run(MemorySegment[] data, long[] offsets, long[] strides, long n);
}
