package dev.sipu.dispatch;

import dev.sipu.api.schema.OpSchema;
import dev.sipu.api.schema.OpTable;
import dev.sipu.dispatch.spi.Registrar;

import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;

/**
 * Kernels by op name and dispatch key. Registration and lookup are safe from any thread at any time:
 * a call sees a kernel slot either before or after a registration, never half of one.
 */
public final class OpRegistry implements Registrar {
    private final OpTable table;
    private final Map<String, OpEntry> entries = new ConcurrentHashMap<>();

    public OpRegistry(OpTable table) {
        this.table = table;
        for (OpSchema s : table.all()) entries.put(s.name(), new OpEntry(s));
    }

    public OpTable table() { return table; }

    @Override
    public void register(String op, DispatchKey key, Kernel kernel) {
        OpEntry e = entries.get(op);
        if (e == null) throw new IllegalArgumentException("cannot register unknown op '" + op + "': declare its schema in schemas.txt");
        if (kernel == null) throw new IllegalArgumentException("null kernel for " + op);
        e.set(key, kernel);
    }

    OpEntry entry(String op) { return entries.get(op); }

    public boolean has(String op, DispatchKey key) {
        OpEntry e = entries.get(op);
        return e != null && e.kernel(key) != null;
    }
}
