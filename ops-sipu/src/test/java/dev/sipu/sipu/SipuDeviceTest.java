package dev.sipu.sipu;

import dev.sipu.api.CpuMemory;
import dev.sipu.api.DType;
import dev.sipu.api.Storage;
import dev.sipu.dispatch.spi.DeviceModule;
import dev.sipu.dispatch.spi.Registrar;
import java.lang.foreign.MemorySegment;
import dev.sipu.api.Device;
import dev.sipu.api.Elements;
import dev.sipu.api.OpArgumentException;
import dev.sipu.api.Scalar;
import dev.sipu.api.Tensor;
import dev.sipu.dispatch.Dispatcher;
import dev.sipu.dispatch.composite.CompositeProvider;
import org.junit.jupiter.api.Test;

import java.lang.foreign.Arena;
import java.util.List;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class SipuDeviceTest {
    /** Host memory only: enough to copy results back for checking. */
    private static final DeviceModule HOST = new DeviceModule() {
        @Override public Device.Type deviceType() { return Device.Type.CPU; }
        @Override public Storage allocate(Device device, long bytes) { return CpuMemory.allocate(bytes); }
        @Override public void copyFromHost(MemorySegment src, Storage dst, long off, long bytes) { MemorySegment.copy(src, 0, dst.memory(), off, bytes); }
        @Override public void copyToHost(Storage src, long off, MemorySegment dst, long bytes) { MemorySegment.copy(src.memory(), off, dst, 0, bytes); }
        @Override public void register(Registrar r) { }
    };

    private final Dispatcher d = Dispatcher.create(List.of(new SipuModule(), HOST), List.of(new CompositeProvider()));

    private Tensor range(long n) {
        return d.ops().arange(Scalar.of(0L), Scalar.of(n), Scalar.of(1L), DType.FLOAT32, Device.SIPU0);
    }

    @Test
    void aCpuTensorHandedToASipuKernelIsRefused() {
        try (Tensor cpu = Tensor.adopt(dev.sipu.api.CpuMemory.allocate(16), DType.FLOAT32, 4);
             Arena a = Arena.ofConfined()) {
            OpArgumentException e = assertThrows(OpArgumentException.class,
                    () -> Native.desc(a, "aten::neg", "self", cpu, cpu.sizes(), cpu.strides()));
            assertTrue(e.getMessage().contains("sipu"), e.getMessage());
        }
        // Through the dispatcher a mix of devices is refused before any kernel runs.
        try (Tensor s = range(4); Tensor cpu = Tensor.adopt(dev.sipu.api.CpuMemory.allocate(16), DType.FLOAT32, 4)) {
            assertThrows(OpArgumentException.class, () -> d.ops().add(s, cpu));
        }
    }

    @Test
    void theCachingAllocatorAccountsAndReleases() {
        SipuAllocator alloc = SipuRuntime.get().allocator(Device.SIPU0);
        long before = alloc.stats().bytesInUse();
        Tensor t = range(1000);
        assertTrue(alloc.stats().bytesInUse() >= before + 4000);
        assertEquals(0, t.storage().memory().address() % 64, "64-byte aligned");
        t.close();
        assertEquals(before, alloc.stats().bytesInUse());
        assertTrue(alloc.stats().bytesCached() >= 4000);
        try (Tensor again = range(1000)) {
            assertTrue(alloc.stats().cacheHits() > 0);
        }
        alloc.emptyCache();
        assertEquals(0, alloc.stats().bytesCached());
    }

    @Test
    void theSimdPathCanBeForcedDown() {
        String forced = System.getenv("SIPU_SIMD");
        String name = SipuRuntime.get().simd(), chosen = name.replace("+amx", "");
        List<String> levels = List.of("scalar", "avx2", "avx512", "avx512_bf16");
        assertTrue(levels.contains(chosen), name);
        assertTrue(!name.endsWith("+amx") || chosen.equals("avx512_bf16"), "AMX only on the full AVX-512 BF16 path: " + name);
        if (forced != null && !forced.isBlank()) {
            assertTrue(levels.indexOf(chosen) <= levels.indexOf(forced), "SIPU_SIMD=" + forced + " chose " + name);
            assertTrue(!name.endsWith("+amx"), "a forced path uses no AMX: " + name);
        }
    }

    @Test
    void manyThreadsGetTheSerialResults() throws Exception {
        try (Tensor x = range(5000)) {
            double[] serial = values(d.ops().mul(x, x));
            ExecutorService pool = Executors.newFixedThreadPool(8);
            try {
                List<Future<double[]>> fs = new java.util.ArrayList<>();
                for (int i = 0; i < 32; i++) fs.add(pool.submit(() -> values(d.ops().mul(x, x))));
                for (Future<double[]> f : fs) assertTrue(java.util.Arrays.equals(serial, f.get()));
            } finally {
                pool.shutdown();
            }
        }
    }

    private double[] values(Tensor t) {
        try (t; Tensor h = d.to(t, Device.CPU)) {
            double[] out = new double[(int) h.numel()];
            for (int i = 0; i < out.length; i++) out[i] = Elements.getDouble(h, i);
            return out;
        }
    }
}
