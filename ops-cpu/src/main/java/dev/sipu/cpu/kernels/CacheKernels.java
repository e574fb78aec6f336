package dev.sipu.cpu.kernels;

import dev.sipu.api.DType;
import dev.sipu.api.Elements;
import dev.sipu.api.Tensor;
import dev.sipu.cpu.simd.E4m3;
import dev.sipu.cpu.simd.Floats;
import dev.sipu.cpu.simd.Vec;
import dev.sipu.dispatch.Call;
import dev.sipu.dispatch.meta.LlmMeta;
import dev.sipu.dispatch.spi.Registrar;

import java.lang.foreign.MemorySegment;

import static dev.sipu.dispatch.DispatchKey.CPU;

/** vLLM's paged-cache writes (SEMANTICS.md §5). */
public final class CacheKernels {
    private CacheKernels() {}

    public static void register(Registrar r) {
        r.registerVoid("_C_cache_ops::concat_and_cache_mla", CPU, CacheKernels::concatAndCacheMla);
    }

    /**
     * Token t's entry [kv_c[t] | k_pe[t]] goes to cache row slot % block_size of block
     * slot / block_size; negative slots are padding. "auto" copies the bytes; fp8 stores the
     * saturating e4m3 code of x / scale. Every slot is checked before the first store.
     */
    private static void concatAndCacheMla(Call c) {
        boolean fp8 = LlmMeta.concatAndCacheMla(c);
        Tensor kv = c.tensor(0), pe = c.tensor(1), cache = c.tensor(2), slots = c.tensor(3);
        int n = Math.toIntExact(slots.size(0));
        long capacity = cache.size(0) * cache.size(1), blockSize = cache.size(1);
        long[] slot = new long[n];
        MemorySegment sm = slots.storage().memory();
        long sItem = slots.dtype().itemSize();
        for (int t = 0; t < n; t++) {
            slot[t] = Elements.getLong(sm, (slots.offset() + t * slots.stride(0)) * sItem, slots.dtype());
            if (slot[t] >= capacity) throw c.error(3, "slot_mapping[" + t + "] = " + slot[t] + " is beyond the cache's " + capacity + " slots");
        }
        int rank = Rows.width(c, 0, kv.size(1)), rope = Rows.width(c, 1, pe.size(1));
        DType t = kv.dtype();
        long item = t.itemSize(), cItem = cache.dtype().itemSize();
        float scale = fp8 ? Floats.loadOne(c.tensor(5).dtype(), c.tensor(5).storage().memory(), c.tensor(5).byteOffset()) : 1f;
        MemorySegment km = kv.storage().memory(), pm = pe.storage().memory(), cm = cache.storage().memory();
        float[] buf = fp8 ? new float[Vec.padded(Math.max(rank, rope))] : null;
        for (int i = 0; i < n; i++) {
            long s = slot[i];
            if (s < 0) continue;
            long dst = (cache.offset() + s / blockSize * cache.stride(0) + s % blockSize * cache.stride(1)) * cItem;
            long a = (kv.offset() + i * kv.stride(0)) * item, b = (pe.offset() + i * pe.stride(0)) * item;
            if (!fp8) {
                MemorySegment.copy(km, a, cm, dst, rank * item);
                MemorySegment.copy(pm, b, cm, dst + rank * cItem, rope * item);
            } else {
                quantize(t, km, a, rank, scale, buf, cm, dst);
                quantize(t, pm, b, rope, scale, buf, cm, dst + rank);
            }
        }
    }

    /** n codes of x / scale (a division, as vLLM's kernel), saturating. */
    private static void quantize(DType t, MemorySegment m, long at, int n, float scale, float[] buf, MemorySegment dst, long dstAt) {
        Floats.load(t, m, at, t.itemSize(), buf, 0, n);
        Vec.divBy(buf, scale, buf, n);
        E4m3.storeSaturating(buf, 0, n, dst, dstAt);
    }
}
