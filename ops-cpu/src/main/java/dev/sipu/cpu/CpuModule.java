package dev.sipu.cpu;

import dev.sipu.api.CpuMemory;
import dev.sipu.api.Device;
import dev.sipu.api.Storage;
import dev.sipu.cpu.kernels.AttentionKernels;
import dev.sipu.cpu.kernels.CacheKernels;
import dev.sipu.cpu.kernels.CopyKernels;
import dev.sipu.cpu.kernels.ElementwiseKernels;
import dev.sipu.cpu.kernels.ExpertsKernels;
import dev.sipu.cpu.kernels.FactoryKernels;
import dev.sipu.cpu.kernels.IndexKernels;
import dev.sipu.cpu.kernels.LlmKernels;
import dev.sipu.cpu.kernels.MatmulKernels;
import dev.sipu.cpu.kernels.MoeKernels;
import dev.sipu.cpu.kernels.PointwiseKernels;
import dev.sipu.cpu.kernels.QuantKernels;
import dev.sipu.cpu.kernels.SortKernels;
import dev.sipu.cpu.kernels.ReductionKernels;
import dev.sipu.cpu.kernels.RopeNormKernels;
import dev.sipu.dispatch.spi.DeviceModule;
import dev.sipu.dispatch.spi.Registrar;

import java.lang.foreign.MemorySegment;

/**
 * The CPU device: host memory ({@link CpuMemory}) and Java kernels. Packages, bottom up:
 * {@code simd} (fp32 vector primitives, dtype conversions), {@code iter} (the iteration core and
 * threading), {@code loops} (elementwise, copy and fill over the core), {@code gemm}, and
 * {@code kernels} (one registration class per op family, over the shared meta of
 * {@code dev.sipu.dispatch.meta}). Also the dispatcher's fallback for ops SIPU lacks.
 */
public final class CpuModule implements DeviceModule {

    @Override
    public Device.Type deviceType() { return Device.Type.CPU; }

    @Override
    public Storage allocate(Device device, long bytes) {
        if (!device.isCpu()) throw new IllegalArgumentException("the CPU module cannot allocate on " + device);
        return CpuMemory.allocate(bytes);
    }

    @Override
    public void copyFromHost(MemorySegment src, Storage dst, long dstOffset, long bytes) {
        MemorySegment.copy(src, 0, dst.memory(), dstOffset, bytes);
    }

    @Override
    public void copyToHost(Storage src, long srcOffset, MemorySegment dst, long bytes) {
        MemorySegment.copy(src.memory(), srcOffset, dst, 0, bytes);
    }

    @Override
    public void register(Registrar r) {
        FactoryKernels.register(r);
        CopyKernels.register(r);
        ElementwiseKernels.register(r);
        MatmulKernels.register(r);
        LlmKernels.register(r);
        RopeNormKernels.register(r);
        QuantKernels.register(r);
        MoeKernels.register(r);
        CacheKernels.register(r);
        PointwiseKernels.register(r);
        ReductionKernels.register(r);
        IndexKernels.register(r);
        SortKernels.register(r);
        ExpertsKernels.register(r);
        AttentionKernels.register(r);
    }
}
