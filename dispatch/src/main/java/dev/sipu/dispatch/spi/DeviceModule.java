package dev.sipu.dispatch.spi;

import dev.sipu.api.Device;
import dev.sipu.api.Storage;
import dev.sipu.dispatch.DispatchKey;

import java.lang.foreign.MemorySegment;

/**
 * A device: its memory and its kernels. Implementations are found with {@link java.util.ServiceLoader}
 * ({@code META-INF/services/dev.sipu.dispatch.spi.DeviceModule}) and must be thread-safe.
 */
public interface DeviceModule extends OpProvider {

    Device.Type deviceType();

    default DispatchKey key() { return deviceType() == Device.Type.SIPU ? DispatchKey.SIPU : DispatchKey.CPU; }

    /** Fresh memory of {@code bytes} bytes on {@code device} (contents undefined). */
    Storage allocate(Device device, long bytes);

    /** Copies {@code bytes} host bytes into {@code dst} at {@code dstOffset}. */
    void copyFromHost(MemorySegment src, Storage dst, long dstOffset, long bytes);

    /** Copies {@code bytes} bytes of {@code src} from {@code srcOffset} to host memory. */
    void copyToHost(Storage src, long srcOffset, MemorySegment dst, long bytes);

    /** Number of devices of this type present (0 when the device cannot be used here). */
    default int deviceCount() { return 1; }
}
