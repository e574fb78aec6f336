package dev.sipu.cpu.kernels;

import dev.sipu.api.DType;
import dev.sipu.api.Elements;
import dev.sipu.api.Tensor;
import dev.sipu.cpu.iter.Parallel;
import dev.sipu.cpu.simd.Floats;
import dev.sipu.cpu.simd.Vec;
import dev.sipu.dispatch.Call;
import dev.sipu.dispatch.meta.AttentionMeta;
import dev.sipu.dispatch.spi.Registrar;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.Arrays;

import static dev.sipu.dispatch.DispatchKey.CPU;

/**
 * varlen_fwd, unified_attention and _flash_attn_forward on CPU over the shared {@link AttentionMeta}
 * plan, the same algorithm as the SIPU core (kernels-c attention.c): per query row and head an online
 * softmax over 64-key tiles, so memory per row is one tile of scores and one output row.
 */
public final class AttentionKernels {
    private AttentionKernels() {}

    private static final int TILE = 64;

    public static void register(Registrar r) {
        for (String op : new String[] {"_vllm_fa2_C::varlen_fwd", "vllm::unified_attention", "flash_attn::_flash_attn_forward"}) {
            r.register(op, CPU, c -> {
                try (AttentionMeta.Plan p = AttentionMeta.plan(c)) {
                    run(c, p);
                    return AttentionMeta.result(c, p);
                }
            });
        }
    }

    private static int[] ints(Tensor t) {
        if (t == null) return null;
        int[] r = new int[Math.toIntExact(t.numel())];
        for (int i = 0; i < r.length; i++) r[i] = (int) Elements.getLong(t, i);
        return r;
    }

    private static void run(Call c, AttentionMeta.Plan p) {
        Tensor q = p.q, k = p.k, v = p.v, out = p.out;
        int[] cuQ = ints(p.cuQ), cuK = ints(p.cuK), used = ints(p.seqused);
        int b = cuQ.length - 1;
        long tq = q.size(0), tk = p.paged() ? 0 : k.size(0);
        int hq = (int) q.size(1), d = (int) q.size(2), kd = p.paged() ? 4 : 3, hk = (int) k.size(kd - 2), dv = (int) v.size(kd - 1);
        long page = p.paged() ? k.size(1) : 0, maxBlocks = p.paged() ? p.blockTable.size(1) : 0;
        // Every index-like value checked before the first store.
        if (b < 0 || cuQ[0] != 0 || cuQ[b] != tq) throw c.error(c.op().startsWith("flash") ? 0 : 4, "cu_seqlens_q must run from 0 to " + tq);
        int[][] table = new int[Math.max(b, 0)][];
        for (int s = 0; s < b; s++) {
            if (cuQ[s + 1] < cuQ[s]) throw c.error(4, "cu_seqlens_q decreases at " + s);
            if (!p.paged()) {
                if (cuK[s] < 0 || cuK[s + 1] < cuK[s] || cuK[s + 1] > tk) {
                    throw c.error(5, "cu_seqlens_k[" + s + ".." + (s + 1) + "] = " + cuK[s] + ".." + cuK[s + 1] + " outside [0, " + tk + "] or decreasing");
                }
                if (used != null && (used[s] < 0 || (long) cuK[s] + used[s] > tk)) throw c.error(6, "seqused_k[" + s + "] = " + used[s] + " runs past the " + tk + " keys");
            } else {
                if (used[s] < 0 || used[s] > maxBlocks * page) throw c.error(6, "seqused_k[" + s + "] = " + used[s] + " exceeds the block table's " + maxBlocks * page + " slots");
                table[s] = new int[(int) ((used[s] + page - 1) / page)];
                for (int blk = 0; blk < table[s].length; blk++) {
                    long id = Elements.getLong(p.blockTable, s * maxBlocks + blk);
                    if (id < 0 || id >= k.size(0)) throw c.error(c.op().startsWith("vllm") ? 11 : 8, "block_table[" + s + ", " + blk + "] = " + id + " outside [0, " + k.size(0) + ")");
                    table[s][blk] = (int) id;
                }
            }
        }
        long rows = tq * hq;
        if (rows == 0) return;
        DType t = q.dtype();
        long item = t.itemSize();
        MemorySegment qm = q.storage().memory(), km = k.storage().memory(), vm = v.storage().memory(), om = out.storage().memory();
        long[] qs = q.strides(), ks = k.strides(), vs = v.strides(), os = out.strides();
        float scale = (float) p.scale, softcap = (float) p.softcap;
        int tasks = Parallel.tasks(rows * 4096);
        Parallel.forEach(tasks, task -> {
            // Vec's loops run over whole vectors: rows are padded to the vector width
            float[] qrow = new float[Vec.padded(d)], krow = new float[Vec.padded(Math.max(d, dv))], acc = new float[Vec.padded(dv)];
            float[] sc = new float[TILE];
            for (long r = rows * task / tasks, end = rows * (task + 1) / tasks; r < end; r++) {
                int row = (int) (r / hq), h = (int) (r % hq);
                int s = sequence(cuQ, row);
                long lq = cuQ[s + 1] - cuQ[s], i = row - cuQ[s], lk = used != null ? used[s] : cuK[s + 1] - cuK[s];
                long pos = i + lk - lq, lo = 0, hi = lk;
                if (p.windowLeft >= 0) lo = Math.max(lo, pos - p.windowLeft);
                if (p.windowRight >= 0) hi = Math.min(hi, pos + p.windowRight + 1);
                int kh = h / (hq / hk);
                Floats.load(t, qm, q.byteOffset() + (row * qs[0] + h * qs[1]) * item, qs[2] * item, qrow, 0, d);
                float m = Float.NEGATIVE_INFINITY, l = 0;
                Arrays.fill(acc, 0);
                for (long j0 = lo; j0 < hi; j0 += TILE) {
                    int n = (int) Math.min(TILE, hi - j0);
                    float tmax = Float.NEGATIVE_INFINITY;
                    for (int j = 0; j < n; j++) {
                        Floats.load(t, km, k.byteOffset() + at(ks, table, cuK, s, j0 + j, kh, page) * item, ks[kd - 1] * item, krow, 0, d);
                        float x = Vec.dot(qrow, 0, krow, 0, d) * scale;
                        if (softcap > 0) x = softcap * (float) Math.tanh(x / softcap);
                        sc[j] = x;
                        tmax = Math.max(tmax, x);
                    }
                    float mnew = Math.max(m, tmax), corr = (float) Math.exp(m - mnew);
                    l *= corr;
                    Vec.scale(acc, corr, acc, dv);
                    for (int j = 0; j < n; j++) {
                        float w = (float) Math.exp(sc[j] - mnew);
                        l += w;
                        Floats.load(t, vm, v.byteOffset() + at(vs, table, cuK, s, j0 + j, kh, page) * item, vs[kd - 1] * item, krow, 0, dv);
                        Vec.addScaled(acc, krow, w, acc, dv);
                    }
                    m = mnew;
                }
                if (l > 0) Vec.divBy(acc, l, acc, dv);
                Floats.store(acc, 0, dv, t, om, out.byteOffset() + (row * os[0] + h * os[1]) * item, os[2] * item);
                if (p.lse != null) {
                    p.lse.storage().memory().set(ValueLayout.JAVA_FLOAT, p.lse.byteOffset() + (h * p.lse.strides()[0] + row * p.lse.strides()[1]) * 4,
                            l > 0 ? m + (float) Math.log(l) : Float.POSITIVE_INFINITY);
                }
            }
        });
    }

    /** The sequence s with cuQ[s] <= row < cuQ[s + 1]. */
    private static int sequence(int[] cuQ, int row) {
        int lo = 0, hi = cuQ.length - 1;
        while (hi - lo > 1) {
            int mid = (lo + hi) >>> 1;
            if (cuQ[mid] <= row) lo = mid;
            else hi = mid;
        }
        return lo;
    }

    /** Element offset of key j of sequence s, head kh: packed rows or paged blocks. */
    private static long at(long[] st, int[][] table, int[] cuK, int s, long j, int kh, long page) {
        if (table[s] != null && cuK == null) return table[s][(int) (j / page)] * st[0] + (j % page) * st[1] + kh * st[2];
        return (cuK[s] + j) * st[0] + kh * st[1];
    }
}
