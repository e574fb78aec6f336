package dev.sipu.dispatch.spi;

import dev.sipu.dispatch.DispatchKey;
import dev.sipu.dispatch.Kernel;

/** What an {@link OpProvider} registers its kernels with. Unknown op names are refused. */
public interface Registrar {
    void register(String op, DispatchKey key, Kernel kernel);
}
