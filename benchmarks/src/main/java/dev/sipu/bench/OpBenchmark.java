package dev.sipu.bench;

import ai.djl.ndarray.NDManager;
import dev.sipu.api.Device;
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
 * One {@link Rows} row on one device, {@code run} = "row@device": {@code sipu} and {@code cpu} through
 * the library's dispatcher (strict: SIPU never falls back), {@code torch} through DJL's libtorch in the
 * same JVM. One parameter rather than row x device so that JMH never spends a trial on a pair that
 * does not exist.
 */
@State(Scope.Thread)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MICROSECONDS)
public class OpBenchmark {
    @Param({"mm f32 M=1@sipu"})
    public String run;

    private Runnable call;
    private final List<AutoCloseable> owned = new ArrayList<>();
    private NDManager manager;

    @Setup(Level.Trial)
    public void setUp() {
        int at = run.lastIndexOf('@');
        String name = run.substring(0, at), device = run.substring(at + 1);
        Rows.Row r = Rows.ALL.get(name);
        if (r == null || !r.runs(device)) throw new IllegalArgumentException("no row '" + name + "' on " + device);
        if (device.equals("torch")) {
            manager = NDManager.newBaseManager();
            call = r.torch().prepare(manager, owned);
        } else {
            call = r.library().prepare(Dispatcher.standard().strict(true), Device.parse(device.equals("sipu") ? "sipu:0" : "cpu"), owned);
        }
        call.run(); // first call outside the timing: fails fast
    }

    @TearDown(Level.Trial)
    public void tearDown() throws Exception {
        for (int i = owned.size() - 1; i >= 0; i--) owned.get(i).close(); // IValues before their manager, caches before models
        owned.clear();
        if (manager != null) manager.close();
    }

    @Benchmark
    public void op() {
        call.run();
    }
}
