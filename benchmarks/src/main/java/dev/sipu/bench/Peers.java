package dev.sipu.bench;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import ai.djl.pytorch.engine.PtNDArray;
import ai.djl.pytorch.engine.PtNDManager;
import ai.djl.pytorch.engine.PtSymbolBlock;
import ai.djl.pytorch.jni.IValue;
import ai.djl.pytorch.jni.JniUtils;

import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.util.List;

/**
 * libtorch peers that DJL's NDArray API cannot express, as TorchScript modules (written by
 * benchmarks/torchscript/make_peers.py) run through DJL's JNI. DJL aborts the JVM on a bf16 NDArray (its
 * dtype table stops before bf16), so bf16 inputs are made as float32 NDArrays, cast inside the
 * {@code cast} module, and kept as IValues that never become NDArrays again.
 */
final class Peers {
    private final NDManager m;
    private final List<AutoCloseable> owned;
    private PtSymbolBlock cast, toDtype;

    /** libtorch's ScalarType code of float8_e4m3fn (torch 1.13, which writes the modules, has no name for it). */
    static final long FLOAT8_E4M3FN = 24;

    Peers(NDManager m, List<AutoCloseable> owned) {
        this.m = m;
        this.owned = owned;
    }

    /** A module from the resources; the manager closes it. */
    PtSymbolBlock module(String name) {
        try (InputStream in = Peers.class.getResourceAsStream("torchscript/" + name + ".pt")) {
            if (in == null) throw new IllegalStateException("no TorchScript peer " + name + ".pt (run benchmarks/torchscript/make_peers.py)");
            return JniUtils.loadModule((PtNDManager) m, in, false, false);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    IValue own(IValue v) {
        owned.add(v);
        return v;
    }

    IValue of(NDArray a) { return own(IValue.from((PtNDArray) a)); }

    /** Uniform in [-1, 1), float32. */
    IValue f32(long... shape) { return of(m.randomUniform(-1, 1, new Shape(shape))); }

    IValue bf16(long... shape) {
        if (cast == null) cast = module("cast");
        return own(cast.forward(f32(shape)));
    }

    /** Uniform in [-1, 1) rounded to e4m3, an IValue only (DJL has no float8 NDArray either). */
    IValue e4m3(long... shape) {
        if (toDtype == null) toDtype = module("to_dtype");
        return own(toDtype.forward(f32(shape), own(IValue.from(FLOAT8_E4M3FN))));
    }

    IValue i64(long value) { return own(IValue.from(value)); }

    IValue f64(double value) { return own(IValue.from(value)); }

    IValue i64(long[] values, long... shape) { return of(m.create(values, new Shape(shape))); }

    /** One timed call: the module's forward, its fresh output released at once. */
    static Runnable call(PtSymbolBlock module, IValue... args) {
        return () -> module.forward(args).close();
    }
}
