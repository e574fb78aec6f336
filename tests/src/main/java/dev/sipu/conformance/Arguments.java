package dev.sipu.conformance;

import com.fasterxml.jackson.databind.JsonNode;
import dev.sipu.api.DType;
import dev.sipu.api.Device;
import dev.sipu.api.Layout;
import dev.sipu.api.MemoryFormat;
import dev.sipu.api.SipuException;
import dev.sipu.api.Tensor;
import dev.sipu.dispatch.Dispatcher;

import java.util.ArrayList;
import java.util.Collections;
import java.util.Iterator;
import java.util.List;

/**
 * Turns a case's encoded values (FORMAT.md "Values") into the Java values of a boxed call on the
 * device under test. Every tensor it makes is remembered and closed with {@link #close()}.
 */
final class Arguments implements AutoCloseable {
    private final Dispatcher dispatcher;
    private final Device device;
    private final Suite.File file;
    private final List<Tensor> made = new ArrayList<>();

    Arguments(Dispatcher dispatcher, Device device, Suite.File file) {
        this.dispatcher = dispatcher;
        this.device = device;
        this.file = file;
    }

    /** A stored tensor, as a CPU tensor viewing the file (not owned by this object). */
    Tensor stored(String name) {
        if (file.tensors() == null) throw new Undecodable(file.problem());
        Tensor t = file.tensors().get(name);
        made.add(t);
        return t;
    }

    /** Keys of FORMAT.md's value encodings; "view" only qualifies "t". */
    private static final java.util.Set<String> KINDS = java.util.Set.of("t", "int", "float", "bool", "ints", "floats", "bools",
            "list", "none", "dtype", "str", "device", "memory_format", "layout");

    /** A value this runner cannot decode: the case cannot run here (reported skipped, never passed). */
    static final class Undecodable extends RuntimeException {
        Undecodable(String why) { super(why); }
    }

    Object decode(JsonNode v) {
        if (v == null || v.isNull()) return null;
        if (!v.isObject()) throw new Undecodable("value " + v + " is not one of FORMAT.md's encodings");
        // The encoding is named by its key, whatever the order of the object's fields.
        String kind = null;
        for (Iterator<String> it = v.fieldNames(); it.hasNext(); ) {
            String f = it.next();
            if (KINDS.contains(f)) {
                if (kind != null) throw new Undecodable("value " + v + " names two encodings");
                kind = f;
            } else if (!(f.equals("view") && v.has("t"))) {
                throw new Undecodable("unknown value encoding '" + f + "' in " + v);
            }
        }
        if (kind == null) throw new Undecodable("value " + v + " names no encoding");
        JsonNode x = v.get(kind);
        try {
            return decode(kind, x, v);
        } catch (IllegalArgumentException e) {
            // an unknown dtype, memory format, layout or device name
            throw new Undecodable(kind + " " + x + ": " + e.getMessage());
        }
    }

    private Object decode(String kind, JsonNode x, JsonNode v) {
        return switch (kind) {
            case "t" -> tensor(x.asText(), v.get("view"));
            case "int" -> x.asLong();
            case "float" -> number(x);
            case "bool" -> x.asBoolean();
            case "ints" -> {
                long[] a = new long[x.size()];
                for (int i = 0; i < a.length; i++) a[i] = x.get(i).asLong();
                yield a;
            }
            case "floats" -> {
                double[] a = new double[x.size()];
                for (int i = 0; i < a.length; i++) a[i] = number(x.get(i));
                yield a;
            }
            case "bools" -> {
                boolean[] a = new boolean[x.size()];
                for (int i = 0; i < a.length; i++) a[i] = x.get(i).asBoolean();
                yield a;
            }
            case "list" -> {
                List<Object> a = new ArrayList<>();
                for (JsonNode e : x) a.add(decode(e));
                yield Collections.unmodifiableList(a);
            }
            case "none" -> null;
            case "dtype" -> DType.parse(x.asText());
            case "str" -> x.asText();
            case "device" -> "target".equals(x.asText()) ? device : Device.parse(x.asText());
            case "memory_format" -> MemoryFormat.parse(x.asText());
            case "layout" -> Layout.parse(x.asText());
            default -> throw new Undecodable("unknown value encoding '" + kind + "'");
        };
    }

    static double number(JsonNode x) {
        if (x.isTextual()) {
            return switch (x.asText()) {
                case "inf" -> Double.POSITIVE_INFINITY;
                case "-inf" -> Double.NEGATIVE_INFINITY;
                case "nan" -> Double.NaN;
                default -> Double.parseDouble(x.asText());
            };
        }
        return x.asDouble();
    }

    /** The stored tensor copied to the device; with a view, as_strided of a fresh contiguous copy. */
    private Tensor tensor(String name, JsonNode view) {
        Tensor host = stored(name);
        Tensor onDevice = dispatcher.to(host, device);
        if (view == null) {
            made.add(onDevice);
            return onDevice;
        }
        try (onDevice) {
            long[] size = longs(view.get("size")), stride = longs(view.get("stride"));
            long offset = view.path("offset").asLong(0);
            Tensor v = onDevice.asStrided(size, stride, offset);
            made.add(v);
            return v;
        }
    }

    private static long[] longs(JsonNode a) {
        long[] out = new long[a.size()];
        for (int i = 0; i < out.length; i++) out[i] = a.get(i).asLong();
        return out;
    }

    /** Remembers a result so that it is closed with the arguments. */
    void own(Object result) {
        if (result instanceof Tensor t) made.add(t);
        else if (result instanceof List<?> l) l.forEach(this::own);
    }

    Tensor toHost(Tensor t) {
        Tensor h = dispatcher.to(t, Device.CPU);
        made.add(h);
        return h;
    }

    @Override
    public void close() {
        for (Tensor t : made) t.close();
        made.clear();
    }
}
