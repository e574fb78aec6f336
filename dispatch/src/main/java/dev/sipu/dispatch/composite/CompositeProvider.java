package dev.sipu.dispatch.composite;

import dev.sipu.dispatch.spi.OpProvider;
import dev.sipu.dispatch.spi.Registrar;

/**
 * The decompositions written once for every device, and the metadata-only view kernels. Found by
 * {@link java.util.ServiceLoader} like the device modules.
 */
public final class CompositeProvider implements OpProvider {
    @Override
    public void register(Registrar r) {
        ViewOps.register(r);
        FactoryOps.register(r);
        CopyOps.register(r);
        MatmulOps.register(r);
        MiscOps.register(r);
        AssembledOps.register(r);
    }
}
