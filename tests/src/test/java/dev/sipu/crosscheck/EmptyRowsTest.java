package dev.sipu.crosscheck;

import dev.sipu.api.DType;
import dev.sipu.api.Device;
import dev.sipu.api.Tensor;
import dev.sipu.dispatch.Dispatcher;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.util.List;
import java.util.Map;

/**
 * Reductions over an empty dim whose rows start past the end of a small storage (a [4, 0] view with
 * stride 1): the fuzz harness found the CPU loader touching those offsets. The rows hold no element,
 * so mean is NaN and sum is 0, and nothing outside the storage may be read.
 */
class EmptyRowsTest {
    private static final Dispatcher D = Dispatcher.standard().strict(true);

    @ParameterizedTest
    @ValueSource(strings = {"cpu", "sipu:0"})
    void emptyRowsPastTheStorageReduceWithoutReadingIt(String name) {
        Device dev = Device.parse(name);
        double nan = Double.NaN;
        try (Tensor base = AtenCrossCheckTest.tensor(new double[] {1}, DType.FLOAT32, dev, 1);
             Tensor empty = base.asStrided(new long[] {4, 0}, new long[] {1, 1}, 0);
             Tensor mean = (Tensor) D.call("aten::mean.dim", new Object[] {empty, new long[] {1}, true},
                     Map.of("dtype", DType.FLOAT64));
             Tensor sum = (Tensor) D.call("aten::sum.dim_IntList", empty, new long[] {1}, false)) {
            AtenCrossCheckTest.check("mean over an empty dim on " + dev, new double[] {nan, nan, nan, nan}, mean, 0);
            AtenCrossCheckTest.check("sum over an empty dim on " + dev, new double[] {0, 0, 0, 0}, sum, 0);
        }
    }
}
