package dev.sipu.sipu;

import dev.sipu.api.NativeException;
import dev.sipu.api.OpArgumentException;
import dev.sipu.api.Tensor;
import dev.sipu.dispatch.Call;
import dev.sipu.ffm.gen.SipuKernels;
import dev.sipu.ffm.gen.sipu_tensor;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/**
 * The bridge from tensors to the C ABI: descriptors ({@code sipu_tensor}) built in a call's
 * confined arena, and status codes turned into exceptions carrying the kernel's own message.
 *
 * <p>Every tensor handed to a SIPU kernel must live in SIPU memory: a CPU tensor is refused here,
 * before any native code could read host memory as device memory.
 */
public final class Native {
    private Native() {}

    static final int MAX_DIMS = SipuKernels.SIPU_MAX_DIMS();

    /** A descriptor of {@code t} for argument {@code arg} of the call, allocated in {@code arena}. */
    public static MemorySegment desc(Arena arena, Call c, int arg, Tensor t) {
        return desc(arena, c.op(), c.name(arg), t, t.sizes(), t.strides());
    }

    /** A descriptor with explicit sizes and strides (a broadcast view of {@code t}'s data). */
    public static MemorySegment desc(Arena arena, String op, String arg, Tensor t, long[] sizes, long[] strides) {
        if (!t.device().isSipu()) {
            throw new OpArgumentException(op, arg, "expected a tensor on sipu, got one on " + t.device()
                    + " (SIPU kernels never read host memory)");
        }
        if (sizes.length > MAX_DIMS) {
            throw new OpArgumentException(op, arg, "has " + sizes.length + " dimensions; SIPU kernels take at most " + MAX_DIMS);
        }
        MemorySegment d = sipu_tensor.allocate(arena);
        sipu_tensor.data(d, t.numel() == 0 ? MemorySegment.NULL : t.data());
        MemorySegment sz = sipu_tensor.sizes(d), st = sipu_tensor.strides(d);
        for (int i = 0; i < sizes.length; i++) {
            sz.setAtIndex(ValueLayout.JAVA_LONG, i, sizes[i]);
            st.setAtIndex(ValueLayout.JAVA_LONG, i, strides[i]);
        }
        sipu_tensor.ndim(d, sizes.length);
        sipu_tensor.dtype(d, t.dtype().code());
        return d;
    }

    /** Throws the kernel's error, naming the op, when {@code status} is not SIPU_OK. */
    public static void check(String op, int status) {
        if (status != SipuKernels.SIPU_OK()) {
            throw new NativeException(op, status, lastError());
        }
    }

    public static String lastError() {
        MemorySegment p = SipuKernels.sipu_last_error();
        return p.address() == 0 ? "(no message)" : p.reinterpret(4096).getString(0);
    }
}
