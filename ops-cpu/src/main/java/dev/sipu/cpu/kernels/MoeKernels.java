package dev.sipu.cpu.kernels;

import dev.sipu.api.DType;
import dev.sipu.api.Elements;
import dev.sipu.api.Tensor;
import dev.sipu.cpu.simd.Floats;
import dev.sipu.cpu.simd.Vec;
import dev.sipu.dispatch.Call;
import dev.sipu.dispatch.meta.LlmMeta;
import dev.sipu.dispatch.spi.Registrar;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.Arrays;
import java.util.List;

import static dev.sipu.dispatch.DispatchKey.CPU;

/**
 * MoE routing and reduction (SEMANTICS.md §6-§9) with the C kernels' arithmetic and tie rules
 * (value descending, then index ascending), so both devices pick the same experts.
 */
public final class MoeKernels {
    private MoeKernels() {}

    private static final ValueLayout.OfFloat F32 = ValueLayout.JAVA_FLOAT_UNALIGNED;
    private static final ValueLayout.OfInt I32 = ValueLayout.JAVA_INT_UNALIGNED;

    public static void register(Registrar r) {
        r.registerVoid("_moe_C::moe_sum", CPU, MoeKernels::moeSum);
        r.registerVoid("_moe_C::topk_softmax", CPU, MoeKernels::topkSoftmax);
        r.register("_moe_C::grouped_topk", CPU, MoeKernels::groupedTopk);
        r.registerVoid("_moe_C::moe_align_block_size", CPU, MoeKernels::moeAlign);
    }

    /**
     * out[m] = sum over k of in[m, k] in fp32, rounded once; for topk 2..4 rounded to the storage
     * dtype after every add, as vLLM's kernel adds in that dtype (other topk go through torch.sum).
     */
    private static void moeSum(Call c) {
        LlmMeta.moeSum(c);
        Tensor in = c.tensor(0), out = c.tensor(1);
        long tokens = in.size(0), topk = in.size(1);
        int h = Rows.width(c, 0, in.size(2));
        if (tokens == 0 || h == 0) return;
        DType t = in.dtype();
        long item = t.itemSize();
        boolean stepwise = topk >= 2 && topk <= 4;
        MemorySegment im = in.storage().memory(), om = out.storage().memory();
        Rows.forEach(tokens, topk * h, () -> {
            float[] acc = new float[Vec.padded(h)], x = new float[Vec.padded(h)];
            return m -> {
                Arrays.fill(acc, 0f);
                for (long k = 0; k < topk; k++) {
                    Floats.load(t, im, in.byteOffset() + (m * topk + k) * h * item, item, x, 0, h);
                    Vec.add(acc, x, acc, h);
                    if (stepwise) Floats.round(acc, 0, h, t);
                }
                Floats.store(acc, 0, h, t, om, out.byteOffset() + m * h * item, item);
            };
        });
    }

    /**
     * Per token: softmax over the experts in fp32 (max, exp(g - max), times 1/sum), then topk rounds
     * of arg-max over the experts not yet taken, ties to the lower index. A row whose
     * probabilities are NaN (a NaN logit) takes the lowest experts not yet taken, with NaN weights.
     */
    private static void topkSoftmax(Call c) {
        LlmMeta.topkSoftmax(c);
        Tensor w = c.tensor(0), ids = c.tensor(1), tei = c.tensor(2), g = c.tensor(3);
        long tokens = g.size(0);
        int experts = Rows.width(c, 3, g.size(1)), topk = (int) w.size(1);
        if (w.numel() == 0) return;
        DType gt = g.dtype();
        MemorySegment gm = g.storage().memory(), wm = w.storage().memory();
        Rows.forEach(tokens, (long) experts * (topk + 2), () -> {
            float[] p = new float[experts];
            return m -> {
                Floats.load(gt, gm, g.byteOffset() + m * experts * gt.itemSize(), gt.itemSize(), p, 0, experts);
                float max = Float.NEGATIVE_INFINITY, sum = 0;
                for (float v : p) max = fmax(max, v);
                for (int e = 0; e < experts; e++) sum += p[e] = exp(p[e] - max);
                float inv = 1f / sum;
                for (int e = 0; e < experts; e++) p[e] *= inv;
                for (int k = 0; k < topk; k++) {
                    int best = -1;
                    for (int e = 0; e < experts; e++) if (p[e] >= 0 && (best < 0 || p[e] > p[best])) best = e;
                    if (best < 0) {
                        for (int e = 0; best < 0; e++) if (p[e] != TAKEN) best = e;
                    }
                    long slot = m * topk + k;
                    wm.set(F32, w.byteOffset() + slot * 4, p[best]);
                    putLong(ids, slot, best);
                    putLong(tei, slot, k * tokens + m);
                    p[best] = TAKEN;
                }
            };
        });
    }

    /** The mark of an expert already picked: below every probability. */
    private static final float TAKEN = -1f;

    /**
     * DeepSeek's noaux_tc routing per token (SEMANTICS.md §9.1, OPS.md): s = scores or
     * sigmoid(scores), choice = s + bias; group score = sum of the group's two best choices; the
     * topk_group best groups are kept; the topk best choices among their experts are picked (NaN
     * and -inf never, falling back to expert k when nothing finite is left); weights are s at the
     * picks, renormalized over (sum + 1e-20) if asked, times routed_scaling_factor.
     */
    private static List<Tensor> groupedTopk(Call c) {
        long[] shape = LlmMeta.groupedTopk(c);
        Tensor w = c.dispatcher().empty(shape, DType.FLOAT32, c.device());
        Tensor ids = c.dispatcher().empty(shape, DType.INT32, c.device());
        try {
            if (shape[0] > 0) groupedTopk(c, w, ids);
            return List.of(w, ids);
        } catch (RuntimeException e) {
            w.close();
            ids.close();
            throw e;
        }
    }

    private static void groupedTopk(Call c, Tensor w, Tensor ids) {
        Tensor scores = c.tensor(0), biasT = c.tensor(6);
        long tokens = scores.size(0);
        int experts = Rows.width(c, 0, scores.size(1)), groups = (int) c.i64(1), topkGroup = (int) c.i64(2);
        int topk = (int) w.size(1), groupSize = experts / groups;
        boolean renormalize = c.bool(4), sigmoid = c.i64(7) == 1;
        float rsf = (float) c.f64(5);
        DType st = scores.dtype();
        float[] bias = new float[experts];
        Floats.load(biasT.dtype(), biasT.storage().memory(), biasT.byteOffset(), biasT.stride(0) * biasT.dtype().itemSize(), bias, 0, experts);
        MemorySegment sm = scores.storage().memory(), wm = w.storage().memory(), im = ids.storage().memory();
        Rows.forEach(tokens, (long) experts * (topk + 4), () -> {
            float[] s = new float[experts], choice = new float[experts], masked = new float[experts], groupScore = new float[groups];
            boolean[] taken = new boolean[experts], groupTaken = new boolean[groups];
            int[] picked = new int[topk];
            return t -> {
                Floats.load(st, sm, scores.byteOffset() + t * experts * st.itemSize(), st.itemSize(), s, 0, experts);
                for (int e = 0; e < experts; e++) {
                    if (sigmoid) s[e] = 1f / (1f + exp(-s[e]));
                    choice[e] = s[e] + bias[e];
                }
                for (int gr = 0; gr < groups; gr++) {
                    float b1 = Float.NEGATIVE_INFINITY, b2 = Float.NEGATIVE_INFINITY;
                    for (int e = gr * groupSize; e < (gr + 1) * groupSize; e++) {
                        float v = choice[e];
                        if (v > b1) {
                            b2 = b1;
                            b1 = v;
                        } else if (v > b2) {
                            b2 = v;
                        }
                    }
                    groupScore[gr] = groupSize == 1 ? b1 : b1 + b2;
                }
                int finite = 0;
                for (float g : groupScore) if (Float.isFinite(g)) finite++;
                if (finite < topkGroup) {
                    // fewer groups qualify than are to be kept: the row is experts 0..k-1 at 1/k each (OPS.md)
                    for (int k = 0; k < topk; k++) {
                        wm.set(F32, w.byteOffset() + (t * topk + k) * 4, 1f / topk);
                        im.set(I32, ids.byteOffset() + (t * topk + k) * 4, k);
                    }
                    return;
                }
                Arrays.fill(taken, false);
                Arrays.fill(groupTaken, false);
                Arrays.fill(masked, Float.NEGATIVE_INFINITY);
                for (int j = 0; j < topkGroup; j++) {
                    int best = argmaxFree(groupScore, groupTaken);
                    if (best < 0) break;
                    groupTaken[best] = true;
                    System.arraycopy(choice, best * groupSize, masked, best * groupSize, groupSize);
                }
                float sum = 0;
                for (int k = 0; k < topk; k++) {
                    int e = argmaxFree(masked, taken);
                    if (e < 0) e = k;   // nothing finite left: expert k, as the CUDA kernel does
                    taken[e] = true;
                    picked[k] = e;
                    sum += s[e];
                }
                for (int k = 0; k < topk; k++) {
                    float v = renormalize ? s[picked[k]] / (sum + 1e-20f) : s[picked[k]];
                    wm.set(F32, w.byteOffset() + (t * topk + k) * 4, v * rsf);
                    im.set(I32, ids.byteOffset() + (t * topk + k) * 4, picked[k]);
                }
            };
        });
    }

    /** The best finite value not taken (non-finite ones never qualify, SEMANTICS.md §9.3); ties to the lower index; -1 if none. */
    private static int argmaxFree(float[] v, boolean[] taken) {
        int best = -1;
        for (int i = 0; i < v.length; i++) {
            if (!taken[i] && Float.isFinite(v[i]) && (best < 0 || v[i] > v[best])) best = i;
        }
        return best;
    }

    /**
     * vLLM's moe_align_block_size: the flat pair indices grouped by expert in ascending expert
     * order, each expert's segment padded with numel to a multiple of block_size; ids outside
     * [0, num_experts) are dropped. Inside a segment the indices ascend. Experts are found by
     * sorting the ids, so the work does not depend on num_experts.
     */
    private static void moeAlign(Call c) {
        LlmMeta.moeAlign(c);
        Tensor topkIds = c.tensor(0), sorted = c.tensor(3), experts = c.tensor(4), post = c.tensor(5);
        long numExperts = c.i64(1), block = c.i64(2);
        if (topkIds.numel() > Integer.MAX_VALUE - 8) throw c.error(0, "has too many elements for the CPU kernel");
        int numel = (int) topkIds.numel();
        long[] id = new long[numel];
        MemorySegment tm = topkIds.storage().memory();
        long item = topkIds.dtype().itemSize();
        int valid = 0;
        for (int i = 0; i < numel; i++) {
            id[i] = Elements.getLong(tm, topkIds.byteOffset() + i * item, topkIds.dtype());
            if (id[i] >= 0 && id[i] < numExperts) valid++;
        }
        // Distinct experts in ascending order and their counts.
        long[] present = new long[valid];
        for (int i = 0, j = 0; i < numel; i++) if (id[i] >= 0 && id[i] < numExperts) present[j++] = id[i];
        Arrays.sort(present);
        int distinct = 0;
        long[] count = new long[valid];
        for (int j = 0; j < valid; j++) {
            if (j == 0 || present[j] != present[j - 1]) present[distinct++] = present[j];
            count[distinct - 1]++;
        }
        long slots = sorted.size(0), blocks = experts.size(0), total = 0;
        long[] start = new long[distinct];
        for (int j = 0; j < distinct; j++) {
            long padded = Math.ceilDiv(count[j], block) * block;   // no overflow: count < 2^31
            if (padded > slots - total) {
                throw c.error(3, "the padded layout needs more than its " + slots + " slots");
            }
            start[j] = total;
            total += padded;
        }
        if (total / block > blocks) throw c.error(4, "the padded layout needs " + total / block + " blocks, the buffer holds " + blocks);

        MemorySegment sm = sorted.storage().memory(), em = experts.storage().memory();
        for (long i = 0; i < slots; i++) sm.set(I32, sorted.byteOffset() + 4 * i, numel);
        for (long b = 0; b < blocks; b++) em.set(I32, experts.byteOffset() + 4 * b, 0);
        for (int j = 0; j < distinct; j++) {
            long end = start[j] + Math.ceilDiv(count[j], block) * block;
            for (long b = start[j] / block; b < end / block; b++) em.set(I32, experts.byteOffset() + 4 * b, (int) present[j]);
        }
        long[] next = start;
        for (int i = 0; i < numel; i++) {
            if (id[i] < 0 || id[i] >= numExperts) continue;
            int j = Arrays.binarySearch(present, 0, distinct, id[i]);
            sm.set(I32, sorted.byteOffset() + 4 * next[j]++, i);
        }
        post.storage().memory().set(I32, post.byteOffset(), (int) total);
    }

    /** exp in fp32 as a correctly rounded double exp narrowed once (what libm's expf returns). */
    private static float exp(float x) {
        return (float) StrictMath.exp(x);
    }

    /** C's fmaxf: a NaN operand is ignored. */
    private static float fmax(float a, float b) {
        return Float.isNaN(b) ? a : Float.isNaN(a) ? b : Math.max(a, b);
    }

    private static void putLong(Tensor t, long index, long v) {
        Elements.putLong(t.storage().memory(), t.byteOffset() + index * t.dtype().itemSize(), t.dtype(), v);
    }
}
