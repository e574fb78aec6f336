package dev.sipu.sipu.kernels;

import dev.sipu.dispatch.spi.Registrar;

/** Every SIPU kernel family, registered under {@link dev.sipu.dispatch.DispatchKey#SIPU}. */
public final class SipuKernelSet {
    private SipuKernelSet() {}

    public static void register(Registrar r) {
        FactoryKernels.register(r);
        ElementwiseKernels.register(r);
        MatmulKernels.register(r);
        LlmKernels.register(r);
        RopeNormKernels.register(r);
        QuantKernels.register(r);
        MoeKernels.register(r);
        PointwiseKernels.register(r);
        ReductionKernels.register(r);
        IndexKernels.register(r);
        SortKernels.register(r);
        AttentionKernels.register(r);
    }
}
