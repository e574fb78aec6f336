package dev.sipu.reliability;

import dev.sipu.api.CpuMemory;
import dev.sipu.api.DType;
import dev.sipu.api.Device;
import dev.sipu.api.Scalar;
import dev.sipu.api.Shapes;
import dev.sipu.api.Tensor;
import dev.sipu.dispatch.DispatchKey;
import dev.sipu.dispatch.Dispatcher;
import dev.sipu.dispatch.Kernel;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.function.Function;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;

/**
 * Eight threads calling ops on shared read-only inputs, each with its own outputs, get bit for bit
 * what a serial run gets; and registering kernels while calls are in flight disturbs no call.
 */
class ConcurrencyTest {
    private static final int THREADS = 8, ROUNDS = 6;

    /** A named computation from the shared inputs to a new tensor. */
    private record Job(String name, Function<Tensor[], Tensor> run) {}

    private static List<Job> jobs(Dispatcher d) {
        return List.of(
                new Job("add", in -> (Tensor) d.call("aten::add.Tensor", in[0], in[1])),
                new Job("mm", in -> (Tensor) d.call("aten::mm", in[0], in[2])),
                new Job("softmax", in -> (Tensor) d.call("aten::_softmax", in[0], -1L, false)),
                new Job("sum", in -> (Tensor) d.call("aten::sum.dim_IntList", new Object[] {in[0], new long[] {0}, false}, Map.of())),
                new Job("index_select", in -> (Tensor) d.call("aten::index_select", in[0], 0L, in[3])),
                new Job("silu_and_mul", in -> {
                    Tensor out = d.empty(new long[] {64, 128}, DType.FLOAT32, in[0].device());
                    d.call("_C::silu_and_mul", out, in[0]);
                    return out;
                }),
                new Job("rms_norm", in -> {
                    Tensor out = d.empty(in[0].sizes(), DType.FLOAT32, in[0].device());
                    d.call("_C::rms_norm", out, in[0], in[4], 1e-6);
                    return out;
                }),
                new Job("bf16 cast", in -> (Tensor) d.call("aten::_to_copy", new Object[] {in[0]}, Map.of("dtype", DType.BFLOAT16))));
    }

    @ParameterizedTest
    @ValueSource(strings = {"cpu", "sipu:0"})
    void threadsMatchSerialRun(String deviceName) throws Exception {
        Device device = Device.parse(deviceName);
        Dispatcher d = Dispatcher.standard().strict(device.isSipu());
        SplittableRandom rnd = new SplittableRandom(7);
        Tensor[] in = {
                random(d, device, rnd, 64, 256), random(d, device, rnd, 64, 256), random(d, device, rnd, 256, 96),
                indices(d, device, rnd, 40, 64), random(d, device, rnd, 256)};
        List<Job> jobs = jobs(d);
        List<byte[]> serial = new ArrayList<>();
        for (Job j : jobs) serial.add(bytes(d, j.run().apply(in)));

        ExecutorService pool = Executors.newFixedThreadPool(THREADS);
        try {
            List<Future<?>> futures = new ArrayList<>();
            for (int t = 0; t < THREADS; t++) {
                int first = t;
                futures.add(pool.submit(() -> {
                    for (int round = 0; round < ROUNDS; round++) {
                        for (int k = 0; k < jobs.size(); k++) {
                            int i = (first + k + round) % jobs.size();
                            byte[] got = bytes(d, jobs.get(i).run().apply(in));
                            assertArrayEquals(serial.get(i), got, jobs.get(i).name() + " differs from the serial run on " + device);
                        }
                    }
                    return null;
                }));
            }
            for (Future<?> f : futures) f.get();
        } finally {
            pool.shutdownNow();
            for (Tensor t : in) t.close();
        }
    }

    @ParameterizedTest
    @ValueSource(strings = {"cpu", "sipu:0"})
    void registeringWhileCallsAreInFlight(String deviceName) throws Exception {
        Device device = Device.parse(deviceName);
        Dispatcher d = Dispatcher.create();
        SplittableRandom rnd = new SplittableRandom(11);
        Tensor a = random(d, device, rnd, 32, 32), b = random(d, device, rnd, 32, 32);
        byte[] expected = bytes(d, (Tensor) d.call("aten::add.Tensor", a, b));
        ExecutorService pool = Executors.newFixedThreadPool(THREADS);
        try {
            List<Future<?>> futures = new ArrayList<>();
            for (int t = 0; t < THREADS - 1; t++) {
                futures.add(pool.submit(() -> {
                    for (int i = 0; i < 200; i++) assertArrayEquals(expected, bytes(d, (Tensor) d.call("aten::add.Tensor", a, b)));
                    return null;
                }));
            }
            // Meanwhile: kernels come and go for an op nobody calls here (a late plug-in registering).
            Kernel probe = c -> Scalar.of(1L);
            futures.add(pool.submit(() -> {
                for (int i = 0; i < 2000; i++) d.registry().register("aten::_local_scalar_dense", DispatchKey.COMPOSITE, probe);
                return null;
            }));
            for (Future<?> f : futures) f.get();
        } finally {
            pool.shutdownNow();
            a.close();
            b.close();
        }
    }

    static Tensor random(Dispatcher d, Device device, SplittableRandom rnd, long... shape) {
        Tensor host = Tensor.adopt(CpuMemory.allocate(Shapes.numel(shape) * 4), DType.FLOAT32, shape);
        MemorySegment m = host.data();
        for (long i = 0; i < host.numel(); i++) m.setAtIndex(ValueLayout.JAVA_FLOAT, i, (float) rnd.nextDouble(-2, 2));
        return moved(d, host, device);
    }

    static Tensor indices(Dispatcher d, Device device, SplittableRandom rnd, int n, int bound) {
        Tensor host = Tensor.adopt(CpuMemory.allocate(n * 8L), DType.INT64, n);
        for (int i = 0; i < n; i++) host.data().setAtIndex(ValueLayout.JAVA_LONG, i, rnd.nextInt(bound));
        return moved(d, host, device);
    }

    private static Tensor moved(Dispatcher d, Tensor host, Device device) {
        if (device.isCpu()) return host;
        try (host) {
            return d.to(host, device);
        }
    }

    /** The tensor's bytes in memory order (contiguous results), read on the host; closes it. */
    static byte[] bytes(Dispatcher d, Tensor t) {
        try (t; Tensor host = d.to(t, Device.CPU)) {
            return host.data().asSlice(0, host.numel() * host.dtype().itemSize()).toArray(ValueLayout.JAVA_BYTE);
        }
    }
}
