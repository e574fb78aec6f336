package dev.sipu.dispatch;

import dev.sipu.api.schema.OpSchema;

import java.util.concurrent.atomic.AtomicReferenceArray;
import java.util.concurrent.atomic.LongAdder;

/** One op in a registry: its schema, a kernel slot per dispatch key, and call counters. */
final class OpEntry {
    final OpSchema schema;
    private final AtomicReferenceArray<Kernel> kernels = new AtomicReferenceArray<>(DispatchKey.values().length);
    private final LongAdder[] calls = new LongAdder[DispatchKey.values().length];
    final LongAdder fallbacks = new LongAdder();
    volatile boolean fallbackLogged;

    OpEntry(OpSchema schema) {
        this.schema = schema;
        for (int i = 0; i < calls.length; i++) calls[i] = new LongAdder();
    }

    Kernel kernel(DispatchKey key) { return kernels.get(key.ordinal()); }

    void set(DispatchKey key, Kernel k) { kernels.set(key.ordinal(), k); }

    void countCall(DispatchKey key) { calls[key.ordinal()].increment(); }

    long calls(DispatchKey key) { return calls[key.ordinal()].sum(); }
}
