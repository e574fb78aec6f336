package dev.sipu.sipu;

import dev.sipu.api.CpuMemory;
import dev.sipu.api.DType;
import dev.sipu.api.Device;
import dev.sipu.api.NativeException;
import dev.sipu.api.SipuException;
import dev.sipu.api.Storage;
import dev.sipu.api.Tensor;
import dev.sipu.ffm.gen.SipuKernels;
import org.junit.jupiter.api.Test;

import java.lang.foreign.Arena;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** What native code reports (allocation failure, a kernel's error status) reaches Java as the library's exceptions. */
class NativeFailureTest {

    @Test
    void anAllocationTheDeviceCannotServeIsAnException() {
        SipuAllocator allocator = SipuRuntime.get().allocator(Device.SIPU0);
        long before = allocator.stats().bytesInUse();
        SipuException e = assertThrows(SipuException.class, () -> allocator.allocate(1L << 50));
        assertTrue(e.getMessage().contains("out of SIPU memory"), e.getMessage());
        assertEquals(before, allocator.stats().bytesInUse(), "a failed allocation holds nothing");
        SipuException h = assertThrows(SipuException.class, () -> CpuMemory.allocate(1L << 50));
        assertTrue(h.getMessage().contains("out of host memory"), h.getMessage());
    }

    @Test
    void aKernelErrorStatusBecomesANativeExceptionWithTheKernelsMessage() {
        Storage s = SipuRuntime.get().allocator(Device.SIPU0).allocate(64);
        try (Tensor t = Tensor.adopt(s, DType.FLOAT32, 4, 4);
             Tensor bad = Tensor.adopt(SipuRuntime.get().allocator(Device.SIPU0).allocate(64), DType.FLOAT32, 16);
             Arena a = Arena.ofConfined()) {
            // a 4x4 output from a 16-element input: the kernel refuses with a status
            int status = SipuKernels.sipu_copy(Native.desc(a, "test::copy", "dst", t, t.sizes(), t.strides()),
                    Native.desc(a, "test::copy", "src", bad, bad.sizes(), bad.strides()));
            NativeException e = assertThrows(NativeException.class, () -> Native.check("test::copy", status));
            assertEquals(SipuKernels.SIPU_ERR_INVALID_ARGUMENT(), e.status());
            assertTrue(e.getMessage().startsWith("test::copy") && e.getMessage().contains("sipu_copy"), e.getMessage());
        }
    }

    @Test
    void aDescriptorBeyondTheHeadersDimensionLimitIsRefusedInJava() {
        try (Tensor t = Tensor.adopt(SipuRuntime.get().allocator(Device.SIPU0).allocate(64), DType.FLOAT32, 1);
             Arena a = Arena.ofConfined()) {
            long[] sizes = new long[SipuKernels.SIPU_MAX_DIMS() + 1];
            java.util.Arrays.fill(sizes, 1);
            assertThrows(SipuException.class, () -> Native.desc(a, "test::op", "self", t, sizes, sizes));
        }
    }
}
