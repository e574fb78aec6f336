package dev.sipu.dispatch.spi;

/**
 * A source of kernels, found with {@link java.util.ServiceLoader}: device modules and the composite
 * decompositions. Providers are stateless; {@link #register} may be called once per dispatcher.
 */
public interface OpProvider {
    void register(Registrar registrar);
}
