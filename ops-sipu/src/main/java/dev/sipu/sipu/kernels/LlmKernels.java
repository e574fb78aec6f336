package dev.sipu.sipu.kernels;

import dev.sipu.dispatch.meta.NormMeta;
import dev.sipu.dispatch.spi.Registrar;
import dev.sipu.ffm.gen.SipuKernels;
import dev.sipu.sipu.Native;

import java.lang.foreign.Arena;

import static dev.sipu.dispatch.DispatchKey.SIPU;

/** vLLM's fused ops on SIPU, one pass over memory each. */
final class LlmKernels {
    private LlmKernels() {}

    static void register(Registrar r) {
        r.register("_C::rms_norm", SIPU, c -> {
            NormMeta.rmsNorm(c, 0, 1, 2);
            if (c.tensor(1).numel() == 0) return null;
            try (Arena a = Arena.ofConfined()) {
                Native.check(c.op(), SipuKernels.sipu_rms_norm(Native.desc(a, c, 0, c.tensor(0)), Native.desc(a, c, 1, c.tensor(1)),
                        Native.desc(a, c, 2, c.tensor(2)), c.f64(3)));
            }
            return null;
        });
        r.register("_C::silu_and_mul", SIPU, c -> {
            NormMeta.siluAndMul(c, 0, 1);
            if (c.tensor(1).numel() == 0) return null;
            try (Arena a = Arena.ofConfined()) {
                Native.check(c.op(), SipuKernels.sipu_silu_and_mul(Native.desc(a, c, 0, c.tensor(0)), Native.desc(a, c, 1, c.tensor(1))));
            }
            return null;
        });
    }
}
