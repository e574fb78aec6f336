package dev.sipu.dispatch;

import dev.sipu.api.DType;
import dev.sipu.api.Device;
import dev.sipu.api.Elements;
import dev.sipu.api.OpArgumentException;
import dev.sipu.api.OpNotImplementedException;
import dev.sipu.api.Tensor;
import dev.sipu.dispatch.composite.CompositeProvider;
import org.junit.jupiter.api.Test;

import java.util.List;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class DispatcherTest {
    private final FakeDevices.Module cpu = new FakeDevices.Module(Device.Type.CPU, true);
    private final FakeDevices.Module sipu = new FakeDevices.Module(Device.Type.SIPU, false);
    private final Dispatcher d = Dispatcher.create(List.of(cpu, sipu), List.of(new CompositeProvider()));

    private Tensor filled(Device dev, double... values) {
        Tensor t = d.empty(new long[] {values.length}, DType.FLOAT32, dev);
        try (Tensor host = d.empty(new long[] {values.length}, DType.FLOAT32, Device.CPU)) {
            for (int i = 0; i < values.length; i++) Elements.putDouble(host.storage().memory(), 4L * i, DType.FLOAT32, values[i]);
            d.ops().copy_(t, dev.isCpu() ? host : d.to(host, dev));
        }
        return t;
    }

    private static double[] values(Dispatcher d, Tensor t) {
        try (Tensor h = d.to(t, Device.CPU)) {
            double[] out = new double[(int) h.numel()];
            for (int i = 0; i < out.length; i++) out[i] = Elements.getDouble(h, i);
            return out;
        }
    }

    @Test
    void opWithOnlyACpuKernelFallsBackForSipuTensorsAndIsCounted() {
        try (Tensor x = filled(Device.SIPU0, 1, -2, 3); Tensor y = d.ops().neg(x)) {
            assertEquals(Device.SIPU0, y.device());
            assertArrayEquals(new double[] {-1, 2, -3}, values(d, y));
            assertEquals(1, d.fallbacks("aten::neg"));
            assertEquals(1, cpu.negCalls.get());
        }
    }

    @Test
    void strictModeRefusesTheFallback() {
        Dispatcher strict = d.strict(true);
        try (Tensor x = filled(Device.SIPU0, 1, 2)) {
            StrictFallbackException e = assertThrows(StrictFallbackException.class, () -> strict.ops().neg(x));
            assertTrue(e.getMessage().contains("aten::neg"), e.getMessage());
            assertEquals(0, cpu.negCalls.get());
        }
    }

    @Test
    void mixingDevicesIsAnErrorNamingTheArgument() {
        try (Tensor a = filled(Device.SIPU0, 1, 2); Tensor b = filled(Device.CPU, 1, 2)) {
            OpArgumentException e = assertThrows(OpArgumentException.class, () -> d.call("aten::copy_", a, b));
            assertEquals("src", e.argument());
        }
    }

    @Test
    void zeroDimCpuTensorsActAsScalarsOnAnotherDevice() {
        try (Tensor a = filled(Device.SIPU0, 0, 0, 0);
             Tensor s = d.empty(new long[0], DType.FLOAT32, Device.CPU)) {
            Elements.putDouble(s.storage().memory(), 0, DType.FLOAT32, 7);
            d.ops().copy_(a, s);
            assertArrayEquals(new double[] {7, 7, 7}, values(d, a));
        }
    }

    @Test
    void inPlaceFallbackWritesBackAndReturnsSelf() {
        try (Tensor a = filled(Device.SIPU0, 1, 2)) {
            // copy_ has a SIPU kernel here; zero_ has none anywhere: not implemented, not a crash.
            assertThrows(OpNotImplementedException.class, () -> d.ops().zero_(a));
            Tensor r = d.ops().copy_(a, a);
            assertSame(a, r);
        }
    }

    @Test
    void compositesRunOnTheCallersDevice() {
        try (Tensor x = filled(Device.SIPU0, 1, 2, 3, 4, 5, 6);
             Tensor v = d.ops().view(x, 2, 3);
             Tensor t = d.ops().t(v);
             Tensor c = d.ops().contiguous(t)) {
            assertEquals(Device.SIPU0, c.device());
            assertTrue(v.sharesStorageWith(x));
            assertArrayEquals(new double[] {1, 4, 2, 5, 3, 6}, values(d, c));
        }
    }

    @Test
    void unknownOpsAndBadArgumentsAreLibraryExceptions() {
        assertThrows(OpNotImplementedException.class, () -> d.call("aten::no_such_op", 1));
        try (Tensor x = filled(Device.CPU, 1, 2, 3)) {
            assertThrows(OpArgumentException.class, () -> d.call("aten::view", x, new long[] {2, 2}));
            assertThrows(OpArgumentException.class, () -> d.call("aten::view", x, "not a shape"));
        }
    }

    @Test
    void callsFromManyThreadsAreIndependent() throws Exception {
        ExecutorService pool = Executors.newFixedThreadPool(8);
        try {
            List<Future<double[]>> fs = new java.util.ArrayList<>();
            for (int i = 0; i < 64; i++) {
                final int k = i;
                fs.add(pool.submit(() -> {
                    try (Tensor x = filled(k % 2 == 0 ? Device.CPU : Device.SIPU0, k + 1, k + 2); Tensor y = d.ops().neg(x)) {
                        return values(d, y);
                    }
                }));
            }
            for (int i = 0; i < fs.size(); i++) assertArrayEquals(new double[] {-i - 1, -i - 2}, fs.get(i).get());
        } finally {
            pool.shutdown();
        }
    }
}
