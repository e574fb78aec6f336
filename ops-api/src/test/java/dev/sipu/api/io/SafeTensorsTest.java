package dev.sipu.api.io;

import dev.sipu.api.CpuMemory;
import dev.sipu.api.DType;
import dev.sipu.api.Elements;
import dev.sipu.api.SipuException;
import dev.sipu.api.Tensor;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class SafeTensorsTest {
    @TempDir
    Path dir;

    private static Tensor filled(DType t, long... shape) {
        Tensor x = Tensor.adopt(CpuMemory.allocate(dev.sipu.api.Shapes.numel(shape) * t.itemSize()), t, shape);
        for (long i = 0; i < x.numel(); i++) Elements.putDouble(x.storage().memory(), i * t.itemSize(), t, (i % 7) - 3);
        return x;
    }

    @Test
    void everyDtypeRoundTripsWithoutCopying() throws IOException {
        Map<String, Tensor> in = new LinkedHashMap<>();
        for (DType t : DType.values()) in.put(t.torchName(), filled(t, 2, 3));
        in.put("empty", filled(DType.FLOAT32, 0, 4));
        Path p = dir.resolve("all.safetensors");
        SafeTensors.write(p, in, Map.of("format", "pt"));
        try (SafeTensors st = SafeTensors.open(p)) {
            assertEquals("pt", st.metadata().get("format"));
            for (Map.Entry<String, Tensor> e : in.entrySet()) {
                try (Tensor got = st.get(e.getKey())) {
                    Tensor want = e.getValue();
                    assertEquals(want.dtype(), got.dtype());
                    assertArrayEquals(want.sizes(), got.sizes());
                    for (long i = 0; i < want.numel(); i++) {
                        assertEquals(Elements.getDouble(want, i), Elements.getDouble(got, i), e.getKey() + "[" + i + "]");
                    }
                }
            }
        }
        in.values().forEach(Tensor::close);
    }

    @Test
    void tensorsOutliveTheFileObject() throws IOException {
        Path p = dir.resolve("one.safetensors");
        try (Tensor x = filled(DType.FLOAT32, 4)) {
            SafeTensors.write(p, Map.of("x", x), null);
        }
        Tensor kept;
        try (SafeTensors st = SafeTensors.open(p)) {
            kept = st.get("x");
        }
        assertFalse(kept.isClosed());
        assertEquals(-2.0, Elements.getDouble(kept, 1));
        kept.close();
        assertTrue(kept.isClosed());
    }

    @Test
    void corruptFilesAreRefusedWithAClearMessage() throws IOException {
        Path p = dir.resolve("bad.safetensors");
        byte[] header = "{\"x\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,64]}}".getBytes(StandardCharsets.UTF_8);
        ByteBuffer b = ByteBuffer.allocate(8 + header.length + 16).order(ByteOrder.LITTLE_ENDIAN);
        b.putLong(header.length).put(header);
        Files.write(p, b.array());
        SipuException e = assertThrows(SipuException.class, () -> SafeTensors.open(p));
        assertTrue(e.getMessage().contains("data_offsets"), e.getMessage());
        Files.write(p, new byte[] {1, 2, 3});
        assertThrows(SipuException.class, () -> SafeTensors.open(p));
        ByteBuffer huge = ByteBuffer.allocate(16).order(ByteOrder.LITTLE_ENDIAN).putLong(1L << 40);
        Files.write(p, huge.array());
        assertThrows(SipuException.class, () -> SafeTensors.open(p));
    }
}
