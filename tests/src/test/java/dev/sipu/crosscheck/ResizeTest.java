package dev.sipu.crosscheck;

import dev.sipu.api.DType;
import dev.sipu.api.Device;
import dev.sipu.api.OpArgumentException;
import dev.sipu.api.Tensor;
import dev.sipu.dispatch.Dispatcher;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** resize_ as PyTorch: in place, contiguous, old elements kept when the storage grows, views keep theirs. */
class ResizeTest {
    private static final Dispatcher D = Dispatcher.standard().strict(true);

    @ParameterizedTest
    @ValueSource(strings = {"cpu", "sipu:0"})
    void resizeKeepsElementsAndAliasesSelf(String name) {
        Device dev = Device.parse(name);
        double[] v = {1, 2, 3, 4, 5, 6};
        try (Tensor t = AtenCrossCheckTest.tensor(v, DType.FLOAT32, dev, 2, 3);
             Tensor view = t.asStrided(new long[] {6}, new long[] {1}, 0)) {
            assertSame(t, D.call("aten::resize_", t, new long[] {3, 2}));
            assertArrayEquals(new long[] {3, 2}, t.sizes());
            assertArrayEquals(new long[] {2, 1}, t.strides());
            Tensor shrunk = (Tensor) D.call("aten::resize_", t, new long[] {4});
            assertSame(t, shrunk);
            assertTrue(t.sharesStorageWith(view), "a resize within the storage keeps it");
            D.call("aten::resize_", t, new long[] {4, 5});
            assertArrayEquals(new long[] {4, 5}, t.sizes());
            assertTrue(!t.sharesStorageWith(view), "growing moves to a new storage; the view keeps the old one");
            try (Tensor head = t.asStrided(new long[] {6}, new long[] {1}, 0)) {
                AtenCrossCheckTest.check("old elements kept on " + dev, v, head, 0);
            }
            AtenCrossCheckTest.check("the view is untouched on " + dev, v, view, 0);
            assertThrows(OpArgumentException.class, () -> D.call("aten::resize_", t, new long[] {-1, 2}));
            assertArrayEquals(new long[] {4, 5}, t.sizes(), "a refused resize changes nothing");
        }
    }
}
