package dev.sipu.bench;

import ai.djl.ndarray.NDManager;
import dev.sipu.api.Device;
import dev.sipu.api.Tensor;
import dev.sipu.dispatch.Dispatcher;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

/**
 * One {@link Rows} row on one device: {@code sipu} and {@code cpu} through the library's dispatcher
 * (strict: SIPU never falls back), {@code torch} through DJL's libtorch in the same JVM. A row without
 * a libtorch peer does nothing on {@code torch} and is reported as n/a by {@link BenchMain}.
 */
@State(Scope.Thread)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MICROSECONDS)
public class OpBenchmark {
    @Param({"mm f32 M=1"})
    public String row;

    @Param({"sipu", "cpu", "torch"})
    public String device;

    private Runnable call;
    private final List<Tensor> owned = new ArrayList<>();
    private NDManager manager;

    @Setup(Level.Trial)
    public void setUp() {
        Rows.Row r = Rows.ALL.get(row);
        if (r == null) throw new IllegalArgumentException("no row '" + row + "'");
        if (device.equals("torch")) {
            if (r.torch() == null) {
                call = () -> { };
                return;
            }
            manager = NDManager.newBaseManager();
            call = r.torch().prepare(manager);
        } else {
            call = r.library().prepare(Dispatcher.standard().strict(true), Device.parse(device.equals("sipu") ? "sipu:0" : "cpu"), owned);
        }
        call.run(); // first call outside the timing: fails fast
    }

    @TearDown(Level.Trial)
    public void tearDown() {
        owned.forEach(Tensor::close);
        owned.clear();
        if (manager != null) manager.close();
    }

    @Benchmark
    public void op() {
        call.run();
    }
}
