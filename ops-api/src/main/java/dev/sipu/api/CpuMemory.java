package dev.sipu.api;

import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;

/**
 * Host memory for CPU tensors: 64-byte aligned blocks from the C library's allocator, freed as soon
 * as the last tensor viewing them is released (no arena per tensor: closing a shared arena costs a
 * thread handshake).
 */
public final class CpuMemory {
    private CpuMemory() {}

    public static final long ALIGNMENT = 64;

    private static final MethodHandle ALIGNED_ALLOC;
    private static final MethodHandle FREE;

    static {
        Linker linker = Linker.nativeLinker();
        var libc = linker.defaultLookup();
        ALIGNED_ALLOC = linker.downcallHandle(libc.find("aligned_alloc").orElseThrow(),
                FunctionDescriptor.of(ValueLayout.ADDRESS, ValueLayout.JAVA_LONG, ValueLayout.JAVA_LONG));
        FREE = linker.downcallHandle(libc.find("free").orElseThrow(),
                FunctionDescriptor.ofVoid(ValueLayout.ADDRESS), Linker.Option.critical(false));
    }

    private static final Storage.Releaser FREE_RELEASER = CpuMemory::free;

    /** A new zero-filled-or-not storage of {@code bytes} bytes on the CPU. */
    public static Storage allocate(long bytes) {
        if (bytes < 0) throw new IllegalArgumentException("negative allocation size " + bytes);
        // aligned_alloc wants a multiple of the alignment, and some block even for empty tensors.
        long rounded = Math.max(ALIGNMENT, (bytes + ALIGNMENT - 1) & -ALIGNMENT);
        if (rounded < bytes) throw new IllegalArgumentException("allocation size " + bytes + " overflows");
        MemorySegment p;
        try {
            p = (MemorySegment) ALIGNED_ALLOC.invokeExact(ALIGNMENT, rounded);
        } catch (Throwable t) {
            throw new SipuException("aligned_alloc failed", t);
        }
        if (p.address() == 0) {
            throw new SipuException("out of host memory: cannot allocate " + bytes + " bytes");
        }
        return new Storage(Device.CPU, p.reinterpret(bytes), FREE_RELEASER);
    }

    private static void free(MemorySegment memory) {
        try {
            FREE.invokeExact(memory);
        } catch (Throwable t) {
            throw new SipuException("free failed", t);
        }
    }
}
