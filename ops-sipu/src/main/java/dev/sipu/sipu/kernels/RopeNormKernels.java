package dev.sipu.sipu.kernels;

import dev.sipu.dispatch.meta.LlmMeta;
import dev.sipu.dispatch.spi.Registrar;
import dev.sipu.ffm.gen.SipuKernels;
import dev.sipu.sipu.Native;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;

import static dev.sipu.dispatch.DispatchKey.SIPU;

/** fused_add_rms_norm and rotary_embedding on SIPU, both in place. */
final class RopeNormKernels {
    private RopeNormKernels() {}

    static void register(Registrar r) {
        // fused_add_rms_norm(input!, residual!, weight, epsilon)
        r.register("_C::fused_add_rms_norm", SIPU, c -> {
            LlmMeta.fusedAddRmsNorm(c);
            if (c.tensor(0).numel() == 0) return null;
            try (Arena a = Arena.ofConfined()) {
                Native.check(c.op(), SipuKernels.sipu_fused_add_rms_norm(Native.desc(a, c, 0, c.tensor(0)),
                        Native.desc(a, c, 1, c.tensor(1)), Native.desc(a, c, 2, c.tensor(2)), c.f64(3)));
            }
            return null;
        });
        // rotary_embedding(positions, query!, key!?, head_size, cos_sin_cache, is_neox)
        r.register("_C::rotary_embedding", SIPU, c -> {
            try (LlmMeta.Rotary rot = LlmMeta.rotary(c); Arena a = Arena.ofConfined()) {
                MemorySegment key = rot.key() == null ? MemorySegment.NULL : Native.desc(a, c, 2, rot.key());
                Native.check(c.op(), SipuKernels.sipu_rotary_embedding(Native.desc(a, c, 0, rot.positions()),
                        Native.desc(a, c, 1, rot.query()), key, c.i64(3), Native.desc(a, c, 4, c.tensor(4)), c.bool(5) ? 1 : 0));
            }
            return null;
        });
    }
}
