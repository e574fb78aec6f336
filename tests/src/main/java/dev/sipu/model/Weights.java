package dev.sipu.model;

import dev.sipu.api.DType;
import dev.sipu.api.Device;
import dev.sipu.api.Tensor;
import dev.sipu.api.io.SafeTensors;
import dev.sipu.dispatch.Dispatcher;

import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * A checkpoint in DeepSeek-V3's naming, memory-mapped, whose tensors are moved to the device on
 * request: floating weights in the activation dtype, float8 weights as they are (with their
 * {@code _scale_inv} block scales). Every tensor handed out is owned here and closed with it.
 */
public final class Weights implements AutoCloseable {
    private final SafeTensors file;
    private final Dispatcher d;
    private final Device device;
    private final DType dtype;
    private final List<Tensor> owned = new ArrayList<>();

    public Weights(Path path, Dispatcher d, Device device, DType activations) throws IOException {
        this.file = SafeTensors.open(path);
        this.d = d;
        this.device = device;
        this.dtype = activations;
    }

    public Dispatcher dispatcher() { return d; }
    public Device device() { return device; }
    public DType dtype() { return dtype; }

    public boolean has(String name) { return file.contains(name); }

    /** The tensor on the device; floating (not float8) ones converted to {@code as}. */
    public Tensor get(String name, DType as) {
        try (Tensor host = file.get(name)) {
            Tensor t = host.dtype().isFloat8() || host.dtype() == as ? d.to(host, device) : convert(host, as);
            return own(t);
        }
    }

    /** The tensor in the activation dtype. */
    public Tensor get(String name) { return get(name, dtype); }

    private Tensor convert(Tensor host, DType as) {
        try (Tensor onDevice = d.to(host, device)) {
            return d.ops().toDtype(onDevice, as);
        }
    }

    /** Registers a tensor made from weights (a stacked or concatenated one) to be closed with them. */
    public Tensor own(Tensor t) {
        owned.add(t);
        return t;
    }

    @Override
    public void close() {
        for (Tensor t : owned) t.close();
        owned.clear();
        file.close();
    }
}
