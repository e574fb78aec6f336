package dev.sipu.dispatch;

import dev.sipu.api.DType;
import dev.sipu.api.Device;
import dev.sipu.api.Generator;
import dev.sipu.api.OpArgumentException;
import dev.sipu.api.OpNotImplementedException;
import dev.sipu.api.Shapes;
import dev.sipu.api.Storage;
import dev.sipu.api.Tensor;
import dev.sipu.api.schema.ArgType;
import dev.sipu.api.schema.Argument;
import dev.sipu.api.schema.OpSchema;
import dev.sipu.api.schema.OpTable;
import dev.sipu.dispatch.spi.DeviceModule;
import dev.sipu.dispatch.spi.OpProvider;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.util.ArrayList;
import java.util.Collections;
import java.util.EnumMap;
import java.util.List;
import java.util.Map;
import java.util.ServiceLoader;

/**
 * Routes op calls by name to the kernel of the device their tensors live on.
 *
 * <p>Lookup order for a device: its own kernel, then the op's composite kernel (a decomposition
 * written once for every device), then, for SIPU only, the CPU kernel with inputs copied to the
 * host and results and written arguments copied back (the fallback, counted per op; strict mode
 * turns it into a {@link StrictFallbackException}).
 *
 * <p>Thread-safe. Each dispatcher owns its registry and counters; {@link #standard()} is a shared
 * one with every provider found on the class path.
 *
 * <p>Logging: logger {@code dev.sipu.trace} at TRACE shows each call, the key that ran it and
 * fallbacks; this class logs the first fallback of each op at INFO.
 */
public final class Dispatcher {
    private static final Logger LOG = LoggerFactory.getLogger(Dispatcher.class);
    private static final Logger TRACE = LoggerFactory.getLogger("dev.sipu.trace");

    private final OpRegistry registry;
    private final Map<Device.Type, DeviceModule> devices;
    private final boolean strict;
    private final Ops ops;
    private final Generator generator;

    private Dispatcher(OpRegistry registry, Map<Device.Type, DeviceModule> devices, boolean strict, Generator generator) {
        this.registry = registry;
        this.devices = devices;
        this.strict = strict;
        this.ops = new Ops(this);
        this.generator = generator;
    }

    private static final class Standard {
        static final Dispatcher INSTANCE = create();
    }

    /** The shared dispatcher with every provider on the class path (not strict). */
    public static Dispatcher standard() { return Standard.INSTANCE; }

    /** A new dispatcher with its own registry, loading providers with the thread's context class loader. */
    public static Dispatcher create() {
        ClassLoader cl = Thread.currentThread().getContextClassLoader();
        if (cl == null) cl = Dispatcher.class.getClassLoader();
        List<OpProvider> providers = new ArrayList<>();
        ServiceLoader.load(OpProvider.class, cl).forEach(providers::add);
        List<DeviceModule> modules = new ArrayList<>();
        ServiceLoader.load(DeviceModule.class, cl).forEach(modules::add);
        return create(modules, providers);
    }

    /** A dispatcher over the given device modules and extra providers (composites, tests). */
    public static Dispatcher create(List<DeviceModule> modules, List<OpProvider> providers) {
        OpRegistry registry = new OpRegistry(OpTable.standard());
        Map<Device.Type, DeviceModule> devices = new EnumMap<>(Device.Type.class);
        for (DeviceModule m : modules) {
            devices.put(m.deviceType(), m);
            m.register(registry);
        }
        for (OpProvider p : providers) p.register(registry);
        LOG.debug("dispatcher created with devices {} and {} providers", devices.keySet(), providers.size());
        return new Dispatcher(registry, Collections.unmodifiableMap(devices), false, new Generator(DEFAULT_SEED));
    }

    /** The same registry and devices, with the CPU fallback forbidden ({@code true}) or allowed. */
    public Dispatcher strict(boolean strict) {
        return strict == this.strict ? this : new Dispatcher(registry, devices, strict, generator);
    }

    public boolean isStrict() { return strict; }

    /** PyTorch's default seed, so that a fresh dispatcher samples reproducibly. */
    public static final long DEFAULT_SEED = 67280421310721L;

    /**
     * The generator sampling ops use when the call passes none: one per dispatcher (shared with its
     * {@link #strict} twin), seeded with {@link #DEFAULT_SEED}. Pass a {@link Generator} of your own
     * for a stream nobody else draws from.
     */
    public Generator defaultGenerator() { return generator; }
    public OpRegistry registry() { return registry; }
    public OpTable table() { return registry.table(); }
    /** Typed methods for common ops. */
    public Ops ops() { return ops; }

    public boolean hasDevice(Device.Type type) {
        DeviceModule m = devices.get(type);
        return m != null && m.deviceCount() > 0;
    }

    DeviceModule module(Device device) {
        DeviceModule m = devices.get(device.type());
        if (m == null || device.index() >= m.deviceCount()) {
            throw new OpNotImplementedException("device", device + " is not available (no module on the class path or no such index)");
        }
        return m;
    }

    // ---- calls ------------------------------------------------------------------------------

    /** Calls an op with positional arguments ({@code call("aten::add.Tensor", a, b)}). */
    public Object call(String op, Object... args) {
        return call(op, args, Map.of());
    }

    /**
     * Calls an op with positional and keyword arguments, as PyTorch's boxed calling convention does.
     * The library's shared rules (type promotion, shapes) report a bad combination of arguments with
     * IllegalArgumentException, and size arithmetic that overflows int64 (a view of 2^63 elements)
     * with ArithmeticException; both leave here as the library's exception naming the op.
     */
    public Object call(String op, Object[] args, Map<String, ?> kwargs) {
        OpEntry e = registry.entry(op);
        if (e == null) throw new OpNotImplementedException(op, "(no such op in the schema table)");
        try {
            return invoke(e, e.schema.bind(args, kwargs));
        } catch (IllegalArgumentException ex) {
            throw new OpArgumentException(op, "arguments", ex.getMessage());
        } catch (ArithmeticException ex) {
            throw new OpArgumentException(op, "arguments", "sizes overflow int64 (" + ex.getMessage() + ")");
        }
    }

    private Object invoke(OpEntry e, Object[] args) {
        OpSchema s = e.schema;
        Device device = inferDevice(s, args);
        DispatchKey key = DispatchKey.of(device);
        Kernel k = e.kernel(key);
        if (k != null) {
            e.countCall(key);
            if (TRACE.isTraceEnabled()) TRACE.trace("{} -> {} ({})", s.name(), key, device);
            return runOn(e, k, args, device);
        }
        k = e.kernel(DispatchKey.COMPOSITE);
        if (k != null) {
            e.countCall(DispatchKey.COMPOSITE);
            if (TRACE.isTraceEnabled()) TRACE.trace("{} -> COMPOSITE ({})", s.name(), device);
            return k.run(new Call(s, args, device, this));
        }
        k = e.kernel(DispatchKey.CPU);
        if (key == DispatchKey.SIPU && k != null) {
            if (strict) throw new StrictFallbackException(s.name(), device.toString());
            return fallback(e, k, args, device);
        }
        throw new OpNotImplementedException(s.name(), "for " + device);
    }

    /** Runs a device kernel, first moving 0-dim CPU tensors (PyTorch's scalar operands) to the device. */
    private Object runOn(OpEntry e, Kernel k, Object[] args, Device device) {
        if (device.isCpu()) return k.run(new Call(e.schema, args, device, this));
        List<Tensor> moved = null;
        for (int i = 0; i < args.length; i++) {
            if (args[i] instanceof Tensor t && !t.device().equals(device)) {
                if (moved == null) moved = new ArrayList<>();
                Tensor m = to(t, device);
                moved.add(m);
                args[i] = m;
            }
        }
        try {
            return k.run(new Call(e.schema, args, device, this));
        } finally {
            if (moved != null) moved.forEach(Tensor::close);
        }
    }

    /**
     * The device of a call: that of its tensors (all on one device, except 0-dim CPU tensors, which
     * PyTorch treats as scalars), else its {@code device} argument, else the CPU.
     */
    private Device inferDevice(OpSchema s, Object[] args) {
        Device main = null;
        String mainArg = null;
        boolean cpuScalar = false;
        Device deviceArg = null;
        List<Argument> params = s.arguments();
        for (int i = 0; i < args.length; i++) {
            Object v = args[i];
            Argument a = params.get(i);
            if (v instanceof Tensor t) {
                if (t.isClosed()) throw new OpArgumentException(s.name(), a.name(), "tensor was closed");
                if (t.dim() == 0 && t.device().isCpu() && !a.written()) { cpuScalar = true; continue; }
                if (main == null) { main = t.device(); mainArg = a.name(); }
                else if (!main.equals(t.device())) throw mixed(s, a.name(), mainArg, main, t.device());
            } else if (v instanceof List<?> list) {
                for (Object o : list) {
                    if (!(o instanceof Tensor t)) continue;
                    if (t.isClosed()) throw new OpArgumentException(s.name(), a.name(), "tensor was closed");
                    if (main == null) { main = t.device(); mainArg = a.name(); }
                    else if (!main.equals(t.device())) throw mixed(s, a.name(), mainArg, main, t.device());
                }
            } else if (v instanceof Device d && a.type() == ArgType.DEVICE) {
                deviceArg = d;
            }
        }
        if (main != null) return main;
        if (cpuScalar) return Device.CPU;
        return deviceArg != null ? deviceArg : Device.CPU;
    }

    private static OpArgumentException mixed(OpSchema s, String arg, String firstArg, Device a, Device b) {
        return new OpArgumentException(s.name(), arg, "expected all tensors to be on the same device, but found "
                + a + " (argument '" + firstArg + "') and " + b);
    }

    /** Runs a CPU kernel for a SIPU call: inputs copied to the host, written arguments and results copied back. */
    private Object fallback(OpEntry e, Kernel cpu, Object[] args, Device device) {
        OpSchema s = e.schema;
        e.fallbacks.increment();
        e.countCall(DispatchKey.CPU);
        if (!e.fallbackLogged) {
            e.fallbackLogged = true;
            LOG.info("{} has no {} kernel: falling back to the CPU (inputs and results are copied)", s.name(), device);
        }
        if (TRACE.isTraceEnabled()) TRACE.trace("{} -> CPU (fallback from {})", s.name(), device);
        Object[] host = args.clone();
        List<Tensor> temps = new ArrayList<>();
        try {
            for (int i = 0; i < host.length; i++) {
                if (host[i] instanceof Tensor t && !t.device().isCpu()) {
                    Tensor c = to(t, Device.CPU);
                    temps.add(c);
                    host[i] = c;
                } else if (host[i] instanceof List<?> list) {
                    List<Tensor> copy = new ArrayList<>(list.size());
                    for (Object o : list) {
                        Tensor t = (Tensor) o;
                        if (t != null && !t.device().isCpu()) {
                            t = to(t, Device.CPU);
                            temps.add(t);
                        }
                        copy.add(t);
                    }
                    host[i] = Collections.unmodifiableList(copy);
                } else if (host[i] instanceof Device d && d.equals(device)) {
                    host[i] = Device.CPU;
                }
            }
            Object result = cpu.run(new Call(s, host, Device.CPU, this));
            for (int i : s.writtenArguments()) {
                if (args[i] instanceof Tensor orig && host[i] instanceof Tensor h && h != orig) copyAcross(orig, h);
            }
            return moveResult(result, args, host, device);
        } finally {
            temps.forEach(Tensor::close);
        }
    }

    private Object moveResult(Object result, Object[] args, Object[] host, Device device) {
        if (result instanceof Tensor t) {
            for (int i = 0; i < host.length; i++) if (host[i] == t) return args[i];   // returned self
            if (!t.device().isCpu()) return t;
            try (t) {
                return to(t, device);
            }
        }
        if (result instanceof List<?> list) {
            List<Object> out = new ArrayList<>(list.size());
            for (Object o : list) out.add(moveResult(o, args, host, device));
            return Collections.unmodifiableList(out);
        }
        return result;
    }

    /** dst (on its device) = src (on another device), converting dtype and layout as copy_ does. */
    private void copyAcross(Tensor dst, Tensor src) {
        try (Tensor moved = to(src, dst.device())) {
            ops.copy_(dst, moved);
        }
    }

    // ---- memory and transfers ---------------------------------------------------------------

    /** An uninitialized contiguous tensor. */
    public Tensor empty(long[] sizes, DType dtype, Device device) {
        long n = Shapes.numel(sizes);
        long bytes = Math.multiplyExact(n, (long) dtype.itemSize());
        Storage st = module(device).allocate(device, bytes);
        return Tensor.adopt(st, dtype, sizes);
    }

    /** An uninitialized tensor with the given strides (storage large enough for the furthest element). */
    public Tensor emptyStrided(long[] sizes, long[] strides, DType dtype, Device device) {
        long extent = Shapes.numel(sizes) == 0 ? 0 : 1;
        for (int i = 0; i < sizes.length && extent > 0; i++) {
            extent = Math.addExact(extent, Math.multiplyExact(sizes[i] - 1, strides[i]));
        }
        Storage st = module(device).allocate(device, Math.multiplyExact(extent, (long) dtype.itemSize()));
        return Tensor.adopt(st, dtype, sizes, strides, 0);
    }

    /** A new contiguous copy of {@code t} on {@code device} (same dtype). */
    public Tensor to(Tensor t, Device device) {
        if (t.device().equals(device)) return ops.contiguousCopy(t);
        Tensor src = t.isContiguous() ? t : ops.contiguousCopy(t);
        try {
            long bytes = t.numel() * t.dtype().itemSize();
            Tensor dst = empty(t.sizes(), t.dtype(), device);
            if (bytes > 0) {
                if (src.device().isCpu()) {
                    module(device).copyFromHost(src.data(), dst.storage(), dst.byteOffset(), bytes);
                } else if (device.isCpu()) {
                    module(src.device()).copyToHost(src.storage(), src.byteOffset(), dst.data(), bytes);
                } else {
                    try (Tensor host = to(src, Device.CPU)) {
                        module(device).copyFromHost(host.data(), dst.storage(), dst.byteOffset(), bytes);
                    }
                }
            }
            return dst;
        } finally {
            if (src != t) src.close();
        }
    }

    // ---- statistics -------------------------------------------------------------------------

    /** Calls per dispatch key and CPU fallbacks, per op, since this registry was created. */
    public List<OpStats> stats() {
        List<OpStats> out = new ArrayList<>();
        for (OpSchema s : registry.table().all()) {
            OpEntry e = registry.entry(s.name());
            long sipu = e.calls(DispatchKey.SIPU), cpu = e.calls(DispatchKey.CPU), comp = e.calls(DispatchKey.COMPOSITE);
            long fb = e.fallbacks.sum();
            if (sipu + cpu + comp + fb > 0) out.add(new OpStats(s.name(), sipu, cpu, comp, fb));
        }
        return out;
    }

    /** Number of CPU fallbacks of {@code op} so far. */
    public long fallbacks(String op) {
        OpEntry e = registry.entry(op);
        return e == null ? 0 : e.fallbacks.sum();
    }

    /** Counters of one op: calls run by SIPU, CPU and composite kernels, and how many CPU runs were fallbacks. */
    public record OpStats(String op, long sipuCalls, long cpuCalls, long compositeCalls, long fallbacks) {}
}
