package dev.sipu.crosscheck;

import dev.sipu.api.DType;
import dev.sipu.api.Device;
import dev.sipu.api.OpArgumentException;
import dev.sipu.api.Tensor;
import dev.sipu.dispatch.Dispatcher;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import static org.junit.jupiter.api.Assertions.assertThrows;

/**
 * gather and scatter_ with 0-dim operands, which PyTorch treats as one element along dim 0
 * (ensure_nonempty_size): found by the fuzz harness, where they once raised an index error from Java.
 */
class ZeroDimIndexTest {
    private static final Dispatcher D = Dispatcher.standard().strict(true);

    @ParameterizedTest
    @ValueSource(strings = {"cpu", "sipu:0"})
    void zeroDimSelfTakesOneIndexAndRefusesMore(String name) {
        Device dev = Device.parse(name);
        try (Tensor self = AtenCrossCheckTest.tensor(new double[] {1}, DType.FLOAT32, dev);
             Tensor src = AtenCrossCheckTest.tensor(new double[] {7}, DType.FLOAT32, dev);
             Tensor one = AtenCrossCheckTest.tensor(new double[] {0}, DType.INT64, dev, 1);
             Tensor five = AtenCrossCheckTest.tensor(new double[] {0, 0, 0, 0, 0}, DType.INT64, dev, 5)) {
            D.call("aten::scatter_.src", self, 0L, one, src);
            AtenCrossCheckTest.check("scatter_ into a 0-dim self on " + dev, new double[] {7}, self, 0);
            try (Tensor g = (Tensor) D.call("aten::gather", src, 0L, one)) {
                AtenCrossCheckTest.check("gather from a 0-dim self on " + dev, new double[] {7}, g, 0);
            }
            try (Tensor vec = AtenCrossCheckTest.tensor(new double[] {4, 5, 6}, DType.FLOAT32, dev, 3);
                 Tensor two = AtenCrossCheckTest.tensor(new double[] {2}, DType.INT64, dev);
                 Tensor g = (Tensor) D.call("aten::gather", vec, 0L, two)) {
                AtenCrossCheckTest.check("gather with a 0-dim index on " + dev, new double[] {6}, g, 0);
                D.call("aten::scatter_.src", vec, 0L, two, vec);
                AtenCrossCheckTest.check("scatter_ with a 0-dim index on " + dev, new double[] {4, 5, 4}, vec, 0);
            }
            assertThrows(OpArgumentException.class, () -> D.call("aten::scatter_.src", self, 0L, five, src));
            AtenCrossCheckTest.check("a refused scatter_ writes nothing on " + dev, new double[] {7}, self, 0);
        }
    }
}
