package dev.sipu.api.io;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.sipu.api.CpuMemory;
import dev.sipu.api.DType;
import dev.sipu.api.Device;
import dev.sipu.api.Elements;
import dev.sipu.api.Shapes;
import dev.sipu.api.SipuException;
import dev.sipu.api.Storage;
import dev.sipu.api.Tensor;

import java.io.IOException;
import java.io.OutputStream;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.Collections;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * A safetensors file (8-byte little-endian header length, JSON header, raw little-endian data),
 * memory-mapped: its tensors are CPU tensors viewing the mapping, no bytes are copied. The mapping is
 * unmapped when this object and every tensor taken from it are closed.
 */
public final class SafeTensors implements AutoCloseable {
    private static final ObjectMapper JSON = new ObjectMapper();
    /** Headers larger than this are refused as corrupt (the format allows 100 MB). */
    private static final long MAX_HEADER = 100L << 20;

    /** Dtype, shape and byte range (relative to the data section) of one stored tensor. */
    public record Entry(String name, DType dtype, long[] shape, long begin, long end) {}

    private final Path path;
    private final Storage data;
    private final Map<String, Entry> entries;
    private final Map<String, String> metadata;
    private boolean closed;

    private SafeTensors(Path path, Storage data, Map<String, Entry> entries, Map<String, String> metadata) {
        this.path = path;
        this.data = data;
        this.entries = entries;
        this.metadata = metadata;
    }

    /** Maps {@code path} and parses its header; every offset is checked against the file. */
    public static SafeTensors open(Path path) throws IOException {
        Arena arena = Arena.ofShared();
        try (FileChannel ch = FileChannel.open(path, StandardOpenOption.READ)) {
            long size = ch.size();
            if (size < 8) throw corrupt(path, "file of " + size + " bytes has no header length");
            MemorySegment file = ch.map(FileChannel.MapMode.READ_ONLY, 0, size, arena);
            long n = file.get(ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN), 0);
            if (n < 2 || n > MAX_HEADER || 8 + n > size) throw corrupt(path, "header length " + n + " does not fit a file of " + size + " bytes");
            byte[] header = file.asSlice(8, n).toArray(ValueLayout.JAVA_BYTE);
            JsonNode root = JSON.readTree(new String(header, StandardCharsets.UTF_8).strip());
            if (root == null || !root.isObject()) throw corrupt(path, "header is not a JSON object");
            long dataStart = 8 + n;
            long dataSize = size - dataStart;
            Map<String, Entry> entries = new LinkedHashMap<>();
            Map<String, String> meta = new LinkedHashMap<>();
            for (Iterator<Map.Entry<String, JsonNode>> it = root.fields(); it.hasNext(); ) {
                Map.Entry<String, JsonNode> f = it.next();
                if (f.getKey().equals("__metadata__")) {
                    f.getValue().fields().forEachRemaining(m -> meta.put(m.getKey(), m.getValue().asText()));
                    continue;
                }
                entries.put(f.getKey(), entry(path, f.getKey(), f.getValue(), dataSize));
            }
            Storage data = new Storage(Device.CPU, file.asSlice(dataStart, dataSize), seg -> arena.close());
            return new SafeTensors(path, data, Collections.unmodifiableMap(entries), Collections.unmodifiableMap(meta));
        } catch (IOException | RuntimeException e) {
            arena.close();
            throw e;
        }
    }

    private static Entry entry(Path path, String name, JsonNode j, long dataSize) {
        try {
            DType dtype = DType.ofSafetensors(j.get("dtype").asText());
            JsonNode shapeNode = j.get("shape"), off = j.get("data_offsets");
            long[] shape = new long[shapeNode.size()];
            for (int i = 0; i < shape.length; i++) shape[i] = shapeNode.get(i).asLong();
            long begin = off.get(0).asLong(), end = off.get(1).asLong();
            long bytes = Math.multiplyExact(Shapes.numel(shape), (long) dtype.itemSize());
            if (begin < 0 || end < begin || end > dataSize) {
                throw corrupt(path, "tensor '" + name + "' has data_offsets [" + begin + ", " + end + "] outside the "
                        + dataSize + "-byte data section");
            }
            if (end - begin != bytes) {
                throw corrupt(path, "tensor '" + name + "' of shape " + Shapes.str(shape) + " " + dtype + " needs "
                        + bytes + " bytes but its data_offsets span " + (end - begin));
            }
            return new Entry(name, dtype, shape, begin, end);
        } catch (SipuException e) {
            throw e;
        } catch (RuntimeException e) {
            throw corrupt(path, "bad header entry for '" + name + "': " + e);
        }
    }

    private static SipuException corrupt(Path path, String what) {
        return new SipuException("corrupt safetensors file " + path + ": " + what);
    }

    public Path path() { return path; }
    public Map<String, Entry> entries() { return entries; }
    public Map<String, String> metadata() { return metadata; }
    public boolean contains(String name) { return entries.containsKey(name); }

    /**
     * The tensor {@code name}, a view of the mapping (read-only memory: do not write into it; clone
     * first). A tensor whose bytes are not aligned to its item size is copied instead.
     */
    public Tensor get(String name) {
        if (closed) throw new IllegalStateException(path + " is closed");
        Entry e = entries.get(name);
        if (e == null) throw new SipuException("no tensor '" + name + "' in " + path);
        int item = e.dtype().itemSize();
        if (e.begin() % item == 0) {
            return Tensor.viewOf(data, e.dtype(), e.shape(), Shapes.contiguousStrides(e.shape()), e.begin() / item);
        }
        Storage copy = CpuMemory.allocate(e.end() - e.begin());
        MemorySegment.copy(data.memory(), e.begin(), copy.memory(), 0, e.end() - e.begin());
        return Tensor.adopt(copy, e.dtype(), e.shape());
    }

    @Override
    public void close() {
        if (!closed) {
            closed = true;
            // Drops this object's reference; tensors still open keep the mapping alive.
            Tensor.adopt(data, DType.UINT8, data.byteSize()).close();
        }
    }

    /** Writes CPU tensors of any layout to {@code path} (row-major data, header padded to 8 bytes). */
    public static void write(Path path, Map<String, Tensor> tensors, Map<String, String> metadata) throws IOException {
        ObjectNode header = JSON.createObjectNode();
        if (metadata != null && !metadata.isEmpty()) {
            ObjectNode m = header.putObject("__metadata__");
            metadata.forEach(m::put);
        }
        long offset = 0;
        for (Map.Entry<String, Tensor> e : tensors.entrySet()) {
            Tensor t = e.getValue();
            if (!t.device().isCpu()) throw new IllegalArgumentException("tensor '" + e.getKey() + "' is on " + t.device() + ", not the CPU");
            long bytes = t.numel() * t.dtype().itemSize();
            ObjectNode n = header.putObject(e.getKey());
            n.put("dtype", t.dtype().safetensorsName());
            var shape = n.putArray("shape");
            for (long s : t.sizes()) shape.add(s);
            n.putArray("data_offsets").add(offset).add(offset + bytes);
            offset += bytes;
        }
        byte[] json = JSON.writeValueAsBytes(header);
        int padded = (json.length + 7) & ~7;
        ByteBuffer len = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN).putLong(padded);
        try (OutputStream out = Files.newOutputStream(path)) {
            out.write(len.array());
            out.write(json);
            for (int i = json.length; i < padded; i++) out.write(' ');
            for (Tensor t : tensors.values()) out.write(bytesOf(t));
        }
    }

    private static byte[] bytesOf(Tensor t) {
        int item = t.dtype().itemSize();
        byte[] out = new byte[Math.toIntExact(t.numel() * item)];
        MemorySegment dst = MemorySegment.ofArray(out);
        MemorySegment src = t.storage().memory();
        if (t.isContiguous()) {
            MemorySegment.copy(src, t.byteOffset(), dst, 0, out.length);
        } else {
            for (long i = 0; i < t.numel(); i++) MemorySegment.copy(src, Elements.byteOffsetOf(t, i), dst, i * item, item);
        }
        return out;
    }
}
