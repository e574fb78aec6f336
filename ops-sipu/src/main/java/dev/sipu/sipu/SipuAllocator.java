package dev.sipu.sipu;

import dev.sipu.api.Device;
import dev.sipu.api.SipuException;
import dev.sipu.api.Storage;

import java.lang.foreign.MemorySegment;
import java.util.ArrayDeque;
import java.util.HashMap;
import java.util.Map;

/**
 * The SIPU caching allocator. Device memory comes from {@code sipu_malloc} (64-byte aligned) and is
 * kept in per-size free lists when tensors release it, so steady-state inference allocates nothing
 * from the device. Like PyTorch's CUDA caching allocator: sizes are rounded up to a block size,
 * {@link #emptyCache()} gives cached blocks back, {@link #stats()} reports what is in use.
 *
 * <p>Without caching (system property {@code sipu.allocator.cache=false}, set by {@code ./sipu sanitize})
 * every tensor gets a block of exactly its size that is freed when it is released, so
 * AddressSanitizer sees any access past a tensor's end or after its release.
 *
 * <p>Thread-safe (one lock; allocation is not on a path hot enough to need more).
 */
public final class SipuAllocator {

    /** The device's raw allocation functions. */
    public interface DeviceMemory {
        /** A 64-byte aligned block, or {@link MemorySegment#NULL} when the device is out of memory. */
        MemorySegment malloc(long bytes);

        void free(MemorySegment block);
    }

    /** Bytes in use by live tensors, the peak of that, bytes held in the cache, and counters. */
    public record Stats(long bytesInUse, long peakBytesInUse, long bytesCached, long allocations, long cacheHits,
                        long deviceMallocs) {}

    private static final long SMALL = 1 << 20;
    private static final long SMALL_BLOCK = 512;
    private static final long LARGE_BLOCK = 2 << 20;

    private final Device device;
    private final DeviceMemory memory;
    private final boolean caching;
    private final Map<Long, ArrayDeque<MemorySegment>> free = new HashMap<>();
    private long inUse, peak, cached, allocations, hits, mallocs;

    public SipuAllocator(Device device, DeviceMemory memory) {
        this(device, memory, true);
    }

    public SipuAllocator(Device device, DeviceMemory memory, boolean caching) {
        this.device = device;
        this.memory = memory;
        this.caching = caching;
    }

    static long roundUp(long bytes) {
        long block = bytes <= SMALL ? SMALL_BLOCK : LARGE_BLOCK;
        long r = Math.max(block, (bytes + block - 1) / block * block);
        if (r < bytes) throw new IllegalArgumentException("allocation size " + bytes + " overflows");
        return r;
    }

    /** A storage of at least {@code bytes} bytes; its memory segment is exactly {@code bytes} long. */
    public Storage allocate(long bytes) {
        if (bytes < 0) throw new IllegalArgumentException("negative allocation size " + bytes);
        long size = caching ? roundUp(bytes) : Math.max(bytes, 1);
        MemorySegment block;
        synchronized (this) {
            ArrayDeque<MemorySegment> list = caching ? free.get(size) : null;
            block = list == null ? null : list.pollLast();
            if (block != null) {
                cached -= size;
                hits++;
            }
            allocations++;
        }
        if (block == null) {
            block = memory.malloc(size);
            if (block.address() == 0) {
                emptyCache();           // give the cache back and try once more, as CUDA's allocator does
                block = memory.malloc(size);
                if (block.address() == 0) {
                    throw new SipuException("out of SIPU memory on " + device + ": cannot allocate " + bytes
                            + " bytes (" + stats() + ")");
                }
            }
            synchronized (this) {
                mallocs++;
            }
        }
        synchronized (this) {
            inUse += size;
            peak = Math.max(peak, inUse);
        }
        final MemorySegment b = block.reinterpret(size);
        return new Storage(device, b.asSlice(0, bytes), seg -> release(b, size));
    }

    private void release(MemorySegment block, long size) {
        if (!caching) {
            synchronized (this) {
                inUse -= size;
            }
            memory.free(block);
            return;
        }
        synchronized (this) {
            inUse -= size;
            cached += size;
            free.computeIfAbsent(size, k -> new ArrayDeque<>()).addLast(block);
        }
    }

    /** Frees every cached block back to the device. */
    public void emptyCache() {
        ArrayDeque<MemorySegment> blocks = new ArrayDeque<>();
        synchronized (this) {
            free.values().forEach(blocks::addAll);
            free.clear();
            cached = 0;
        }
        blocks.forEach(memory::free);
    }

    public synchronized Stats stats() {
        return new Stats(inUse, peak, cached, allocations, hits, mallocs);
    }

    /** Starts peak tracking afresh from the current use. */
    public synchronized void resetPeak() { peak = inUse; }
}
