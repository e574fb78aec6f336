package dev.sipu.sipu;

import dev.sipu.api.Device;
import dev.sipu.ffm.NativeLibrary;
import dev.sipu.ffm.gen.SipuKernels;

import java.lang.foreign.MemorySegment;

/**
 * The process's SIPU devices. Device memory is a process-wide resource, like a GPU's, so there is
 * one allocator per device; everything else (dispatchers, strict mode) belongs to its user.
 */
public final class SipuRuntime {
    private static final class Holder {
        static final SipuRuntime INSTANCE = new SipuRuntime();
    }

    private final SipuAllocator allocator;

    private SipuRuntime() {
        NativeLibrary.ensureLoaded();
        allocator = new SipuAllocator(Device.SIPU0, new SipuAllocator.DeviceMemory() {
            @Override public MemorySegment malloc(long bytes) { return SipuKernels.sipu_malloc(bytes); }
            @Override public void free(MemorySegment block) { SipuKernels.sipu_free(block); }
        }, !"false".equals(System.getProperty("sipu.allocator.cache")));
    }

    public static SipuRuntime get() { return Holder.INSTANCE; }

    public SipuAllocator allocator(Device device) {
        if (!device.isSipu() || device.index() != 0) throw new IllegalArgumentException("no such SIPU device: " + device);
        return allocator;
    }

    /** The SIMD path the kernels chose at load time (scalar, avx2, avx512, avx512_bf16). */
    public String simd() { return SipuKernels.sipu_simd_name().reinterpret(64).getString(0); }

    public int threads() { return SipuKernels.sipu_get_num_threads(); }

    public void setThreads(int n) {
        if (n < 1) throw new IllegalArgumentException("thread count must be >= 1, got " + n);
        SipuKernels.sipu_set_num_threads(n);
    }
}
