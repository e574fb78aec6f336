package dev.sipu.sipu;

import dev.sipu.api.Device;
import dev.sipu.api.NativeException;
import dev.sipu.api.Storage;
import dev.sipu.dispatch.spi.DeviceModule;
import dev.sipu.dispatch.spi.Registrar;
import dev.sipu.ffm.NativeLibrary;
import dev.sipu.ffm.gen.SipuKernels;
import dev.sipu.sipu.kernels.SipuKernelSet;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.lang.foreign.MemorySegment;

/**
 * The SIPU device: memory from {@code sipu_malloc} through a caching {@link SipuAllocator}, kernels
 * from libsipu_kernels through the jextract bindings. When the native library cannot be loaded the
 * module reports no device (and the dispatcher says so on use) instead of failing the class path.
 */
public final class SipuModule implements DeviceModule {
    private static final Logger LOG = LoggerFactory.getLogger(SipuModule.class);

    @Override
    public Device.Type deviceType() { return Device.Type.SIPU; }

    private static final class Availability {
        static final boolean AVAILABLE = check();

        private static boolean check() {
            if (NativeLibrary.isAvailable()) return true;
            LOG.warn("SIPU unavailable: {}", failure());
            return false;
        }
    }

    @Override
    public int deviceCount() { return Availability.AVAILABLE ? 1 : 0; }

    private static String failure() {
        try {
            NativeLibrary.ensureLoaded();
            return "";
        } catch (UnsatisfiedLinkError e) {
            return e.getMessage();
        }
    }

    @Override
    public Storage allocate(Device device, long bytes) {
        return SipuRuntime.get().allocator(device).allocate(bytes);
    }

    @Override
    public void copyFromHost(MemorySegment src, Storage dst, long dstOffset, long bytes) {
        checkDevice(dst);
        check(dst, dstOffset, bytes);
        int st = SipuKernels.sipu_memcpy_h2d(dst.memory().asSlice(dstOffset, bytes), src.asSlice(0, bytes), bytes);
        if (st != 0) throw new NativeException("sipu_memcpy_h2d", st, Native.lastError());
    }

    @Override
    public void copyToHost(Storage src, long srcOffset, MemorySegment dst, long bytes) {
        checkDevice(src);
        check(src, srcOffset, bytes);
        int st = SipuKernels.sipu_memcpy_d2h(dst.asSlice(0, bytes), src.memory().asSlice(srcOffset, bytes), bytes);
        if (st != 0) throw new NativeException("sipu_memcpy_d2h", st, Native.lastError());
    }

    private static void checkDevice(Storage s) {
        if (!s.device().isSipu()) throw new IllegalArgumentException("storage on " + s.device() + " is not SIPU memory");
    }

    private static void check(Storage s, long offset, long bytes) {
        if (offset < 0 || bytes < 0 || offset + bytes > s.byteSize()) {
            throw new IllegalArgumentException("copy of " + bytes + " bytes at " + offset + " exceeds a storage of " + s.byteSize());
        }
    }

    @Override
    public void register(Registrar r) {
        SipuKernelSet.register(r);
    }
}
