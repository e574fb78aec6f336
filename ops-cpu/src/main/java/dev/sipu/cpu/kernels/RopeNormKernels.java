package dev.sipu.cpu.kernels;

import dev.sipu.api.DType;
import dev.sipu.api.Elements;
import dev.sipu.api.Tensor;
import dev.sipu.cpu.simd.Floats;
import dev.sipu.cpu.simd.Vec;
import dev.sipu.dispatch.Call;
import dev.sipu.dispatch.meta.LlmMeta;
import dev.sipu.dispatch.meta.NormMeta;
import dev.sipu.dispatch.spi.Registrar;

import java.lang.foreign.MemorySegment;

import static dev.sipu.dispatch.DispatchKey.CPU;

/**
 * fused_add_rms_norm and rotary_embedding (SEMANTICS.md §2, §4), both in place, with the rounding
 * points of the C kernels: the same fp32 operations in the same order and a correctly rounded sum of
 * squares, so results agree with SIPU bit for bit.
 */
public final class RopeNormKernels {
    private RopeNormKernels() {}

    public static void register(Registrar r) {
        r.registerVoid("_C::fused_add_rms_norm", CPU, RopeNormKernels::fusedAddRmsNorm);
        r.registerVoid("_C::rotary_embedding", CPU, RopeNormKernels::rotaryEmbedding);
    }

    /**
     * Per row: z = x + residual in fp32; residual = round(z); x = round(round(z * inv) * w) with
     * inv = 1/sqrt(mean(z^2) + eps) from the unrounded z, as the C kernel does.
     */
    private static void fusedAddRmsNorm(Call c) {
        int h = Rows.width(c, 0, LlmMeta.fusedAddRmsNorm(c));
        Tensor x = c.tensor(0), res = c.tensor(1), w = c.tensor(2);
        long rows = NormMeta.rows(x);
        if (rows == 0 || h == 0) return;
        DType t = x.dtype();
        long item = t.itemSize();
        float eps = (float) c.f64(3);
        float[] weight = new float[Vec.padded(h)];
        Floats.load(t, w.storage().memory(), w.byteOffset(), item, weight, 0, h);
        MemorySegment xm = x.storage().memory(), rm = res.storage().memory();
        Rows.forEach(rows, h, () -> {
            float[] z = new float[Vec.padded(h)], other = new float[Vec.padded(h)];
            return r -> {
                long xAt = NormMeta.rowOffset(x, r) * item, rAt = NormMeta.rowOffset(res, r) * item;
                Floats.load(t, xm, xAt, item, z, 0, h);
                Floats.load(t, rm, rAt, item, other, 0, h);
                Vec.add(z, other, z, h);
                Floats.store(z, 0, h, t, rm, rAt, item);
                float inv = 1f / (float) Math.sqrt(Vec.sumOfSquares(z, h) / h + eps);
                Vec.scale(z, inv, z, h);
                Floats.round(z, 0, h, t);
                Vec.mul(z, weight, z, h);
                Floats.store(z, 0, h, t, xm, xAt, item);
            };
        });
    }

    /** Query or key seen as [T, heads, head_size]: byte offsets of token t, head h. */
    private record Heads(MemorySegment m, DType dtype, long base, long heads, long tokenStride, long headStride) {
        static Heads of(Tensor x, long headSize) {
            long item = x.dtype().itemSize();
            boolean perHead = x.dim() == 3;
            return new Heads(x.storage().memory(), x.dtype(), x.byteOffset(), perHead ? x.size(1) : x.size(-1) / headSize,
                    x.stride(0) * item, (perHead ? x.stride(1) : headSize) * item);
        }

        long at(long t, long h) { return base + t * tokenStride + h * headStride; }
    }

    /**
     * Per token: cos and sin of its position read once as fp32, then every head of query and key
     * rotated over its first rot_dim elements: x' = x*c - y*s, y' = y*c + x*s, rounded once.
     * Every position is checked before the first store.
     */
    private static void rotaryEmbedding(Call c) {
        try (LlmMeta.Rotary r = LlmMeta.rotary(c)) {
            rotaryEmbedding(c, r.positions(), r.query(), r.key());
        }
    }

    /** positions [T], query and key [T, ...] (key null when None). */
    private static void rotaryEmbedding(Call c, Tensor pos, Tensor q, Tensor k) {
        Tensor cache = c.tensor(4);
        long tokens = pos.size(0), headSize = c.i64(3), maxPos = cache.size(0);
        int rot = Rows.width(c, 4, cache.size(1)), half = rot / 2;
        if (tokens == 0 || half == 0) return;
        long[] p = new long[Math.toIntExact(tokens)];
        MemorySegment pm = pos.storage().memory();
        long pItem = pos.dtype().itemSize();
        for (int t = 0; t < p.length; t++) {
            p[t] = Elements.getLong(pm, (pos.offset() + t * pos.stride(0)) * pItem, pos.dtype());
            if (p[t] < 0 || p[t] >= maxPos) {
                throw c.error(0, "positions[" + t + "] = " + p[t] + " is outside the cos_sin_cache's " + maxPos + " rows");
            }
        }
        Heads qh = Heads.of(q, headSize), kh = k == null ? null : Heads.of(k, headSize);
        boolean neox = c.bool(5);
        MemorySegment cm = cache.storage().memory();
        DType ct = cache.dtype();
        long cItem = ct.itemSize();
        long heads = qh.heads() + (kh == null ? 0 : kh.heads());
        Rows.forEach(tokens, heads * rot, () -> {
            int n = Vec.padded(half);
            float[] cos = new float[n], sin = new float[n], x = new float[n], y = new float[n];
            return t -> {
                long row = (cache.offset() + p[(int) t] * cache.stride(0)) * cItem, col = cache.stride(1) * cItem;
                Floats.load(ct, cm, row, col, cos, 0, half);
                Floats.load(ct, cm, row + half * col, col, sin, 0, half);
                rotateHeads(qh, t, half, neox, cos, sin, x, y);
                if (kh != null) rotateHeads(kh, t, half, neox, cos, sin, x, y);
            };
        });
    }

    /** NeoX pairs (i, i + half): two contiguous runs; GPT-J pairs (2i, 2i + 1): two runs of stride 2. */
    private static void rotateHeads(Heads v, long t, int half, boolean neox, float[] cos, float[] sin, float[] x, float[] y) {
        DType d = v.dtype();
        long item = d.itemSize();
        long step = neox ? item : 2 * item, second = neox ? half * item : item;
        for (long h = 0; h < v.heads(); h++) {
            long at = v.at(t, h);
            Floats.load(d, v.m(), at, step, x, 0, half);
            Floats.load(d, v.m(), at + second, step, y, 0, half);
            Vec.rotate(x, y, cos, sin, half);
            Floats.store(x, 0, half, d, v.m(), at, step);
            Floats.store(y, 0, half, d, v.m(), at + second, step);
        }
    }
}
