package dev.sipu.bench;

import dev.sipu.api.DType;
import dev.sipu.api.Device;
import dev.sipu.api.Tensor;
import dev.sipu.dispatch.Dispatcher;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;
import org.openjdk.jmh.annotations.Warmup;

import java.util.concurrent.TimeUnit;

/**
 * The cost of a boxed call that does no work: {@code aten::detach_} returns its argument, so this is
 * argument binding, device inference and kernel lookup, per call.
 */
@State(Scope.Thread)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.NANOSECONDS)
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 5, time = 1)
@Fork(value = 1, jvmArgsAppend = {"--add-modules", "jdk.incubator.vector", "--enable-native-access=ALL-UNNAMED"})
public class DispatchOverheadBenchmark {

    @Param({"cpu"})
    public String device;

    private Dispatcher dispatcher;
    private Tensor x;

    @Setup(Level.Trial)
    public void setUp() {
        dispatcher = Dispatcher.standard();
        x = dispatcher.ops().empty(new long[] {16}, DType.FLOAT32, Device.parse(device));
    }

    @TearDown(Level.Trial)
    public void tearDown() { x.close(); }

    @Benchmark
    public Object boxedEmptyKernel() {
        return dispatcher.call("aten::detach_", x);
    }
}
