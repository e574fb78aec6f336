package dev.sipu.dispatch.spi;

import dev.sipu.dispatch.Call;
import dev.sipu.dispatch.DispatchKey;
import dev.sipu.dispatch.Kernel;

import java.util.function.Consumer;

/** What an {@link OpProvider} registers its kernels with. Unknown op names are refused. */
public interface Registrar {
    void register(String op, DispatchKey key, Kernel kernel);

    /** For ops whose schema returns nothing (vLLM's out-argument ops): the kernel's result is null. */
    default void registerVoid(String op, DispatchKey key, Consumer<Call> kernel) {
        register(op, key, c -> {
            kernel.accept(c);
            return null;
        });
    }
}
