package dev.sipu.dispatch;

import dev.sipu.api.CpuMemory;
import dev.sipu.api.Device;
import dev.sipu.api.Elements;
import dev.sipu.api.Storage;
import dev.sipu.api.Tensor;
import dev.sipu.dispatch.spi.DeviceModule;
import dev.sipu.dispatch.spi.Registrar;

import java.lang.foreign.MemorySegment;
import java.util.concurrent.atomic.AtomicInteger;

/** Device modules for dispatcher tests: host memory, a few scalar-loop kernels, no natives. */
final class FakeDevices {
    private FakeDevices() {}

    /** A device module whose memory is host memory tagged with its device type. */
    static class Module implements DeviceModule {
        final Device.Type type;
        final AtomicInteger negCalls = new AtomicInteger();
        final boolean withNeg;

        Module(Device.Type type, boolean withNeg) {
            this.type = type;
            this.withNeg = withNeg;
        }

        @Override public Device.Type deviceType() { return type; }

        @Override
        public Storage allocate(Device device, long bytes) {
            Storage host = CpuMemory.allocate(bytes);
            MemorySegment m = host.memory();
            // Re-tag the block with this device; releasing it frees the host block.
            return new Storage(device, m, seg -> {
                Tensor.adopt(host, dev.sipu.api.DType.UINT8, bytes).close();
            });
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
            DispatchKey key = key();
            r.register("aten::empty.memory_format", key, c -> {
                Device d = c.deviceArg(3) != null ? c.deviceArg(3) : c.device();
                return c.dispatcher().empty(c.ints(0), c.dtype(1) != null ? c.dtype(1) : dev.sipu.api.DType.FLOAT32, d);
            });
            r.register("aten::copy_", key, c -> {
                Tensor dst = c.tensor(0), src = c.tensor(1);
                for (long i = 0; i < dst.numel(); i++) {
                    Elements.putDouble(dst.storage().memory(), Elements.byteOffsetOf(dst, i), dst.dtype(),
                            Elements.getDouble(src.storage().memory(), Elements.byteOffsetOf(src, i % src.numel()), src.dtype()));
                }
                return dst;
            });
            if (withNeg) {
                r.register("aten::neg", key, c -> {
                    negCalls.incrementAndGet();
                    Tensor x = c.tensor(0);
                    Tensor out = c.dispatcher().empty(x.sizes(), x.dtype(), c.device());
                    for (long i = 0; i < x.numel(); i++) {
                        Elements.putDouble(out.storage().memory(), Elements.byteOffsetOf(out, i), out.dtype(), -Elements.getDouble(x, i));
                    }
                    return out;
                });
            }
        }
    }
}
