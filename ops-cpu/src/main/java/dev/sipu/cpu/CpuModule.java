package dev.sipu.cpu;

import dev.sipu.api.CpuMemory;
import dev.sipu.api.Device;
import dev.sipu.api.Storage;
import dev.sipu.cpu.kernels.CopyKernels;
import dev.sipu.cpu.kernels.ElementwiseKernels;
import dev.sipu.cpu.kernels.FactoryKernels;
import dev.sipu.cpu.kernels.LlmKernels;
import dev.sipu.cpu.kernels.MatmulKernels;
import dev.sipu.dispatch.spi.DeviceModule;
import dev.sipu.dispatch.spi.Registrar;

import java.lang.foreign.MemorySegment;

/** The CPU device: host memory and Java (Vector API) kernels; also the fallback for ops SIPU lacks. */
public final class CpuModule implements DeviceModule {

    @Override
    public Device.Type deviceType() { return Device.Type.CPU; }

    @Override
    public Storage allocate(Device device, long bytes) { return CpuMemory.allocate(bytes); }

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
    }
}
