package dev.sipu.crosscheck;

import dev.sipu.api.Conversions;
import dev.sipu.api.DType;
import dev.sipu.api.Device;
import dev.sipu.api.Elements;
import dev.sipu.api.SipuException;
import dev.sipu.api.Tensor;
import dev.sipu.dispatch.Dispatcher;
import org.junit.jupiter.api.Test;

import java.lang.foreign.ValueLayout;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

/**
 * The vLLM, DeepSeek and MoE ops on shapes the recorded cases do not cover (odd token counts,
 * widths that are no multiple of the vector width, 64/128/192 head dims, hundreds of experts):
 * SIPU (strict) and CPU must agree bit for bit wherever the C kernel's arithmetic is fixed (every op
 * but the sums of squares of the norms and libm's expf in the routers), and both are compared with
 * plain scalar references written here from OPS.md and SEMANTICS.md.
 */
class LlmCrossCheckTest {
    private static final Dispatcher D = Dispatcher.standard().strict(true);
    private static final Device[] DEVICES = {Device.SIPU0, Device.CPU};
    private static final DType[] FLOATS = {DType.FLOAT32, DType.BFLOAT16, DType.FLOAT16};

    // ---- norms ------------------------------------------------------------------------------

    /** SEMANTICS.md §1-§2: residual = round(x + r); out = round(round(z * inv) * w) with z the fp32 sum. */
    @Test
    void rmsNormAndFusedAddRmsNormOnOddWidths() {
        SplittableRandom rnd = new SplittableRandom(11);
        for (DType t : FLOATS) {
            for (int h : new int[] {1, 13, 100, 4099, 7168}) {
                for (int rows : new int[] {1, 7, 33}) {
                    int pad = 3;   // input rows lie pad elements apart: a column slice of a wider tensor
                    double[] x = stored(t, normal(rnd, rows * (h + pad))), r = stored(t, normal(rnd, rows * h)), w = stored(t, normal(rnd, h));
                    double eps = 1e-6;
                    double[] xr = new double[rows * h];
                    for (int i = 0; i < rows; i++) System.arraycopy(x, i * (h + pad), xr, i * h, h);
                    double[] z = new double[rows * h];
                    for (int i = 0; i < z.length; i++) z[i] = (float) xr[i] + (float) r[i];
                    double[] wantNorm = rmsNormReference(t, xr, w, rows, h, eps);
                    double[] wantFused = rmsNormReference(t, z, w, rows, h, eps);
                    double[] wantResidual = stored(t, z);
                    Map<Device, double[][]> got = new HashMap<>();
                    for (Device dev : DEVICES) {
                        try (Tensor xs = tensor(dev, t, x, rows, h + pad); Tensor xv = xs.asStrided(new long[] {rows, h}, new long[] {h + pad, 1}, 0);
                             Tensor rs = tensor(dev, t, r, rows, h); Tensor ws = tensor(dev, t, w, h); Tensor out = tensor(dev, t, new double[rows * h], rows, h)) {
                            D.call("_C::rms_norm", out, xv, ws, eps);
                            double[] norm = values(out);
                            D.call("_C::fused_add_rms_norm", xv, rs, ws, eps);
                            got.put(dev, new double[][] {norm, values(xv), values(rs)});
                        }
                    }
                    String what = t + " [" + rows + ", " + h + "]";
                    // fp32: the fp32 sum of squares drifts from the double one with the row length;
                    // bf16/fp16: a flip of the first rounding is scaled by |w| before the second.
                    int ulps = t == DType.FLOAT32 ? 4 + h / 64 : 3;
                    for (Device dev : DEVICES) {
                        closeUlps("rms_norm " + what + " on " + dev, wantNorm, got.get(dev)[0], t, ulps);
                        closeUlps("fused_add_rms_norm " + what + " on " + dev, wantFused, got.get(dev)[1], t, ulps);
                        assertArrayEquals(wantResidual, got.get(dev)[2], "fused_add_rms_norm residual " + what + " on " + dev);
                    }
                }
            }
        }
    }

    static double[] rmsNormReference(DType t, double[] x, double[] w, int rows, int h, double eps) {
        double[] out = new double[rows * h];
        for (int r = 0; r < rows; r++) {
            double ss = 0;
            for (int i = 0; i < h; i++) ss += x[r * h + i] * x[r * h + i];
            float inv = (float) (1 / Math.sqrt(ss / h + (float) eps));
            for (int i = 0; i < h; i++) out[r * h + i] = round(t, round(t, (float) x[r * h + i] * inv) * (float) w[i]);
        }
        return out;
    }

    // ---- rotary embedding -------------------------------------------------------------------

    /**
     * SEMANTICS.md §4 on DeepSeek-like heads: head dims 64, 128 and 192 (rope on the first 64 of
     * 192, as MLA's rope part), NeoX and GPT-J pairs, flat and per-head layouts, a key with fewer
     * heads or none. Each rotated value is fp32 arithmetic rounded once, so all three agree exactly.
     */
    @Test
    void rotaryEmbeddingOnDeepSeekHeadDims() {
        SplittableRandom rnd = new SplittableRandom(12);
        int maxPos = 301;
        for (DType t : new DType[] {DType.FLOAT32, DType.BFLOAT16}) {
            for (int[] dims : new int[][] {{64, 64}, {128, 128}, {192, 64}, {192, 192}, {128, 32}}) {
                int head = dims[0], rot = dims[1];
                double[] cache = stored(t, cosSinCache(maxPos, rot));
                for (boolean neox : new boolean[] {true, false}) {
                    for (int tokens : new int[] {1, 5, 37}) {
                        int qHeads = 3, kHeads = tokens % 2 == 1 ? 1 : 0;
                        double[] pos = new double[tokens];
                        for (int i = 0; i < tokens; i++) pos[i] = rnd.nextInt(maxPos);
                        double[] q = stored(t, normal(rnd, tokens * qHeads * head)), k = stored(t, normal(rnd, tokens * Math.max(kHeads, 1) * head));
                        double[] wantQ = rotaryReference(t, q, pos, cache, qHeads, head, rot, neox);
                        double[] wantK = rotaryReference(t, k, pos, cache, Math.max(kHeads, 1), head, rot, neox);
                        for (Device dev : DEVICES) {
                            boolean perHead = tokens % 5 == 0;
                            long[] qShape = perHead ? new long[] {tokens, qHeads, head} : new long[] {tokens, (long) qHeads * head};
                            try (Tensor p = tensor(dev, DType.INT64, pos, tokens); Tensor qt = tensor(dev, t, q, qShape);
                                 Tensor kt = tensor(dev, t, k, tokens, (long) Math.max(kHeads, 1) * head); Tensor ct = tensor(dev, t, cache, maxPos, rot)) {
                                D.call("_C::rotary_embedding", new Object[] {p, qt, kHeads == 0 ? null : kt, (long) head, ct, neox}, Map.of());
                                String what = t + " head " + head + " rot " + rot + (neox ? " neox" : " gptj") + " T " + tokens + " on " + dev;
                                assertArrayEquals(wantQ, values(qt), "query " + what);
                                assertArrayEquals(kHeads == 0 ? k : wantK, values(kt), "key " + what);
                            }
                        }
                    }
                }
            }
        }
    }

    /** A cache of cat(cos, sin) rows with rope frequencies, as vLLM builds it. */
    static double[] cosSinCache(int maxPos, int rot) {
        double[] c = new double[maxPos * rot];
        for (int p = 0; p < maxPos; p++) {
            for (int i = 0; i < rot / 2; i++) {
                double f = p * Math.pow(10000, -2.0 * i / rot);
                c[p * rot + i] = Math.cos(f);
                c[p * rot + rot / 2 + i] = Math.sin(f);
            }
        }
        return c;
    }

    static double[] rotaryReference(DType t, double[] x, double[] pos, double[] cache, int heads, int head, int rot, boolean neox) {
        double[] out = x.clone();
        int half = rot / 2;
        for (int tok = 0; tok < pos.length; tok++) {
            int p = (int) pos[tok];
            for (int h = 0; h < heads; h++) {
                int base = (tok * heads + h) * head;
                for (int i = 0; i < half; i++) {
                    int ix = base + (neox ? i : 2 * i), iy = base + (neox ? i + half : 2 * i + 1);
                    float a = (float) x[ix], b = (float) x[iy], c = (float) cache[p * rot + i], s = (float) cache[p * rot + half + i];
                    out[ix] = round(t, a * c - b * s);
                    out[iy] = round(t, b * c + a * s);
                }
            }
        }
        return out;
    }

    @Test
    void rotaryEmbeddingRejectsAPositionOutsideTheCacheBeforeWriting() {
        for (Device dev : DEVICES) {
            double[] q = normal(new SplittableRandom(13), 3 * 64);
            try (Tensor p = tensor(dev, DType.INT64, new double[] {1, 7, 2}, 3); Tensor qt = tensor(dev, DType.FLOAT32, q, 3, 64);
                 Tensor ct = tensor(dev, DType.FLOAT32, cosSinCache(7, 64), 7, 64)) {
                assertThrows(SipuException.class, () -> D.call("_C::rotary_embedding", new Object[] {p, qt, null, 64L, ct, true}, Map.of()), "on " + dev);
                assertArrayEquals(stored(DType.FLOAT32, q), values(qt), "query untouched on " + dev);
            }
        }
    }

    // ---- MoE --------------------------------------------------------------------------------

    /** SEMANTICS.md §7: topk 2..4 add in the storage dtype, others sum in fp32 and round once. */
    @Test
    void moeSumOverEveryTopk() {
        SplittableRandom rnd = new SplittableRandom(14);
        for (DType t : FLOATS) {
            for (int topk : new int[] {1, 2, 3, 4, 6, 8}) {
                for (int[] th : new int[][] {{1, 7}, {5, 129}, {33, 1000}, {3, 7168}}) {
                    int tokens = th[0], h = th[1];
                    double[] in = stored(t, normal(rnd, tokens * topk * h));
                    double[] want = new double[tokens * h];
                    for (int m = 0; m < tokens; m++) {
                        for (int i = 0; i < h; i++) {
                            float acc = 0;
                            for (int k = 0; k < topk; k++) {
                                acc += (float) in[(m * topk + k) * h + i];
                                if (topk >= 2 && topk <= 4) acc = (float) round(t, acc);
                            }
                            want[m * h + i] = round(t, acc);
                        }
                    }
                    for (Device dev : DEVICES) {
                        try (Tensor x = tensor(dev, t, in, tokens, topk, h); Tensor out = tensor(dev, t, new double[tokens * h], tokens, h)) {
                            D.call("_moe_C::moe_sum", x, out);
                            assertArrayEquals(want, values(out), "moe_sum " + t + " topk " + topk + " [" + tokens + ", " + h + "] on " + dev);
                        }
                    }
                }
            }
        }
    }

    /**
     * SEMANTICS.md §9.9 (the CUDA kernel's form: -inf mask, stable ties, 1e-20 in the renormalizing
     * sum) with hundreds of experts. Logits are continuous fp32 values, so no two choices tie.
     */
    @Test
    void groupedTopkWithManyExperts() {
        SplittableRandom rnd = new SplittableRandom(15);
        int[][] configs = {{256, 8, 4, 8}, {384, 8, 3, 8}, {160, 8, 2, 6}, {64, 1, 1, 6}, {96, 32, 7, 5}};
        for (int[] cfg : configs) {
            int experts = cfg[0], groups = cfg[1], topkGroup = cfg[2], topk = cfg[3];
            for (int scoring : new int[] {0, 1}) {
                for (boolean renormalize : new boolean[] {true, false}) {
                    int tokens = 1 + rnd.nextInt(40) * 2;
                    double[] logits = new double[tokens * experts], bias = new double[experts];
                    for (int i = 0; i < logits.length; i++) logits[i] = (float) (scoring == 1 ? rnd.nextGaussian() * 2 : rnd.nextDouble());
                    for (int e = 0; e < experts; e++) bias[e] = (float) (rnd.nextDouble() * 0.1);
                    double rsf = 2.5;
                    Map<Device, Object[]> got = new HashMap<>();
                    for (Device dev : DEVICES) {
                        try (Tensor s = tensor(dev, DType.FLOAT32, logits, tokens, experts); Tensor b = tensor(dev, DType.FLOAT32, bias, experts)) {
                            @SuppressWarnings("unchecked")
                            List<Tensor> r = (List<Tensor>) D.call("_moe_C::grouped_topk",
                                    s, (long) groups, (long) topkGroup, (long) topk, renormalize, rsf, b, (long) scoring);
                            try (Tensor w = r.get(0); Tensor ids = r.get(1)) {
                                assertEquals(DType.FLOAT32, w.dtype());
                                assertEquals(DType.INT32, ids.dtype());
                                got.put(dev, new Object[] {values(w), values(ids)});
                            }
                        }
                    }
                    String what = "grouped_topk E " + experts + " groups " + groups + "/" + topkGroup + " topk " + topk
                            + " scoring " + scoring + (renormalize ? " renormalized" : "");
                    assertArrayEquals((double[]) got.get(Device.SIPU0)[1], (double[]) got.get(Device.CPU)[1], what + ": ids differ between devices");
                    closeUlps(what + ": weights differ between devices", (double[]) got.get(Device.SIPU0)[0], (double[]) got.get(Device.CPU)[0], DType.FLOAT32, 2);
                    for (int t = 0; t < tokens; t++) {
                        Map<Integer, Double> want = groupedTopkReference(Arrays.copyOfRange(logits, t * experts, (t + 1) * experts), bias,
                                groups, topkGroup, topk, renormalize, rsf, scoring);
                        for (Device dev : DEVICES) {
                            double[] w = (double[]) got.get(dev)[0], ids = (double[]) got.get(dev)[1];
                            Map<Integer, Double> row = new HashMap<>();
                            for (int k = 0; k < topk; k++) row.put((int) ids[t * topk + k], w[t * topk + k]);
                            assertEquals(want.keySet(), row.keySet(), what + " token " + t + " on " + dev);
                            for (var e : want.entrySet()) {
                                assertEquals(e.getValue(), row.get(e.getKey()), 1e-6 * Math.abs(e.getValue()) + 1e-30, what + " weight of " + e.getKey() + " on " + dev);
                            }
                        }
                    }
                }
            }
        }
    }

    /**
     * One token: expert id -> weight, in double. Non-finite choice values count as -inf (a group
     * scores the sum of its two best, so it qualifies only if both are finite); with fewer qualifying
     * groups than topk_group the row is experts 0..topk-1 at 1/topk (OPS.md).
     */
    static Map<Integer, Double> groupedTopkReference(double[] logits, double[] bias, int groups, int topkGroup, int topk,
                                                     boolean renormalize, double rsf, int scoring) {
        int experts = logits.length, size = experts / groups;
        double[] s = new double[experts], b = new double[experts];
        for (int e = 0; e < experts; e++) {
            s[e] = scoring == 1 ? 1 / (1 + Math.exp(-logits[e])) : logits[e];
            b[e] = Double.isFinite(s[e] + bias[e]) ? s[e] + bias[e] : Double.NEGATIVE_INFINITY;
        }
        List<Integer> groupOrder = new ArrayList<>();
        double[] gs = new double[groups];
        for (int g = 0; g < groups; g++) {
            double[] v = Arrays.copyOfRange(b, g * size, (g + 1) * size);
            Arrays.sort(v);
            gs[g] = size == 1 ? v[0] : v[size - 1] + v[size - 2];
            if (Double.isFinite(gs[g])) groupOrder.add(g);
        }
        Map<Integer, Double> r = new HashMap<>();
        if (groupOrder.size() < topkGroup) {
            for (int k = 0; k < topk; k++) r.put(k, 1.0 / topk);
            return r;
        }
        groupOrder.sort((x, y) -> gs[x] != gs[y] ? Double.compare(gs[y], gs[x]) : Integer.compare(x, y));
        List<Integer> candidates = new ArrayList<>();
        for (int j = 0; j < topkGroup; j++)
            for (int e = groupOrder.get(j) * size; e < (groupOrder.get(j) + 1) * size; e++) if (Double.isFinite(b[e])) candidates.add(e);
        candidates.sort((x, y) -> b[x] != b[y] ? Double.compare(b[y], b[x]) : Integer.compare(x, y));
        double sum = 0;
        for (int k = 0; k < topk; k++) sum += s[candidates.get(k)];
        for (int k = 0; k < topk; k++) {
            int e = candidates.get(k);
            r.put(e, (renormalize ? s[e] / (sum + 1e-20) : s[e]) * rsf);
        }
        return r;
    }

    /**
     * Row t of gating [T, E] in double: softmax, the ids of the ids.length largest probabilities (ties to
     * the lower id) written to ids, their probabilities returned.
     */
    static double[] topkSoftmaxReference(double[] g, int t, int experts, int[] ids) {
        double max = Double.NEGATIVE_INFINITY, z = 0;
        for (int e = 0; e < experts; e++) max = Math.max(max, g[t * experts + e]);
        for (int e = 0; e < experts; e++) z += Math.exp(g[t * experts + e] - max);
        Integer[] order = new Integer[experts];
        for (int e = 0; e < experts; e++) order[e] = e;
        Arrays.sort(order, (x, y) -> g[t * experts + x] != g[t * experts + y]
                ? Double.compare(g[t * experts + y], g[t * experts + x]) : Integer.compare(x, y));
        double[] w = new double[ids.length];
        for (int k = 0; k < ids.length; k++) {
            ids[k] = order[k];
            w[k] = Math.exp(g[t * experts + order[k]] - max) / z;
        }
        return w;
    }

    /**
     * Rows with non-finite scores: NaN in whole groups (too few groups left: the 1/topk fallback),
     * -inf in half of every group and +inf in one expert (those experts and that group never chosen).
     */
    @Test
    void groupedTopkWithNonFiniteScores() {
        int experts = 64, groups = 8, topkGroup = 3, topk = 6, tokens = 4;
        SplittableRandom rnd = new SplittableRandom(19);
        double[] logits = new double[tokens * experts], bias = new double[experts];
        for (int i = 0; i < logits.length; i++) logits[i] = (float) rnd.nextDouble();
        for (int e = 0; e < experts; e++) bias[e] = (float) (rnd.nextDouble() * 0.1);
        for (int e = 2 * 8; e < experts; e++) logits[experts + e] = Double.NaN;               // token 1: groups 2..7 all NaN
        for (int e = 0; e < experts; e += 2) logits[2 * experts + e] = Double.NEGATIVE_INFINITY; // token 2
        logits[3 * experts + 13] = Double.POSITIVE_INFINITY;                                   // token 3
        for (int scoring : new int[] {0, 1}) {
            for (Device dev : DEVICES) {
                try (Tensor s = tensor(dev, DType.FLOAT32, logits, tokens, experts); Tensor b = tensor(dev, DType.FLOAT32, bias, experts)) {
                    @SuppressWarnings("unchecked")
                    List<Tensor> r = (List<Tensor>) D.call("_moe_C::grouped_topk", s, (long) groups, (long) topkGroup, (long) topk, true, 2.5, b,
                            (long) scoring);
                    try (Tensor w = r.get(0); Tensor ids = r.get(1)) {
                        double[] wv = values(w), iv = values(ids);
                        for (int t = 0; t < tokens; t++) {
                            Map<Integer, Double> want = groupedTopkReference(Arrays.copyOfRange(logits, t * experts, (t + 1) * experts), bias,
                                    groups, topkGroup, topk, true, 2.5, scoring);
                            Map<Integer, Double> row = new HashMap<>();
                            for (int k = 0; k < topk; k++) row.put((int) iv[t * topk + k], wv[t * topk + k]);
                            String what = "token " + t + " scoring " + scoring + " on " + dev;
                            assertEquals(want.keySet(), row.keySet(), what);
                            for (var e : want.entrySet()) assertEquals(e.getValue(), row.get(e.getKey()), 1e-6 * Math.abs(e.getValue()), what);
                        }
                    }
                }
            }
        }
    }

    /** SEMANTICS.md §8: softmax in fp32, topk by arg-max (ties to the lower index), token_expert_indices = k*T + t. */
    @Test
    void topkSoftmaxWithManyExpertsAndANanRow() {
        SplittableRandom rnd = new SplittableRandom(16);
        for (int[] cfg : new int[][] {{256, 8, 9}, {64, 6, 3}, {300, 2, 17}}) {
            int experts = cfg[0], topk = cfg[1], tokens = cfg[2];
            double[] g = new double[tokens * experts];
            for (int i = 0; i < g.length; i++) g[i] = (float) (rnd.nextGaussian() * 3);
            g[experts + 5] = Double.NaN;   // token 1 has a NaN logit: every probability of its row is NaN
            Map<Device, double[][]> got = new HashMap<>();
            for (Device dev : DEVICES) {
                try (Tensor gt = tensor(dev, DType.FLOAT32, g, tokens, experts); Tensor w = tensor(dev, DType.FLOAT32, new double[tokens * topk], tokens, topk);
                     Tensor ids = tensor(dev, DType.INT32, new double[tokens * topk], tokens, topk);
                     Tensor tei = tensor(dev, DType.INT32, new double[tokens * topk], tokens, topk)) {
                    D.call("_moe_C::topk_softmax", w, ids, tei, gt);
                    got.put(dev, new double[][] {values(w), values(ids), values(tei)});
                }
            }
            String what = "topk_softmax E " + experts + " topk " + topk + " T " + tokens;
            double[] sipuW = got.get(Device.SIPU0)[0], cpuW = got.get(Device.CPU)[0];
            assertArrayEquals(got.get(Device.SIPU0)[1], got.get(Device.CPU)[1], what + ": ids differ between devices");
            closeUlps(what + ": weights differ between devices", sipuW, cpuW, DType.FLOAT32, 2);
            for (int t = 0; t < tokens; t++) {
                int[] order = new int[topk];
                double[] weight = topkSoftmaxReference(g, t, experts, order);
                for (Device dev : DEVICES) {
                    double[][] r = got.get(dev);
                    for (int k = 0; k < topk; k++) {
                        int slot = t * topk + k;
                        assertEquals((double) k * tokens + t, r[2][slot], what + " token_expert_indices on " + dev);
                        if (t == 1) {
                            assertEquals(k, (int) r[1][slot], what + ": the NaN row takes experts in order on " + dev);
                            assertTrue(Double.isNaN(r[0][slot]), what + ": the NaN row's weights are NaN on " + dev);
                        } else {
                            assertEquals(order[k], (int) r[1][slot], what + " token " + t + " pick " + k + " on " + dev);
                            assertEquals(weight[k], r[0][slot], 2e-6 * weight[k], what + " token " + t + " weight " + k + " on " + dev);
                        }
                    }
                }
            }
        }
    }

    /**
     * SEMANTICS.md §6 reference sketch (segments in ascending pair index) with hundreds of experts,
     * ids beyond num_experts and negative ones dropped, block sizes that leave most blocks padded.
     */
    @Test
    void moeAlignBlockSizeWithManyExperts() {
        SplittableRandom rnd = new SplittableRandom(17);
        for (int[] cfg : new int[][] {{256, 16, 37, 8}, {384, 64, 5, 8}, {7, 128, 101, 3}, {160, 1, 9, 6}}) {
            int experts = cfg[0], block = cfg[1], tokens = cfg[2], topk = cfg[3];
            int numel = tokens * topk;
            double[] ids = new double[numel];
            for (int i = 0; i < numel; i++) ids[i] = rnd.nextInt(20) == 0 ? (rnd.nextBoolean() ? experts + rnd.nextInt(5) : -1) : rnd.nextInt(experts);
            int slots = numel + experts * (block - 1), blocks = (slots + block - 1) / block;
            double[] wantSorted = new double[slots], wantExperts = new double[blocks];
            Arrays.fill(wantSorted, numel);
            int pos = 0;
            for (int e = 0; e < experts; e++) {
                int n = 0;
                for (int i = 0; i < numel; i++) if (ids[i] == e) wantSorted[pos + n++] = i;
                int padded = (n + block - 1) / block * block;
                for (int b = pos / block; b < (pos + padded) / block; b++) wantExperts[b] = e;
                pos += padded;
            }
            for (DType idType : new DType[] {DType.INT32, DType.INT64}) {
                for (Device dev : DEVICES) {
                    try (Tensor topkIds = tensor(dev, idType, ids, tokens, topk); Tensor sorted = tensor(dev, DType.INT32, new double[slots], slots);
                         Tensor eids = tensor(dev, DType.INT32, new double[blocks], blocks); Tensor post = tensor(dev, DType.INT32, new double[1], 1)) {
                        D.call("_moe_C::moe_align_block_size", topkIds, (long) experts, (long) block, sorted, eids, post);
                        String what = "moe_align_block_size E " + experts + " block " + block + " numel " + numel + " " + idType + " on " + dev;
                        assertEquals(pos, (int) values(post)[0], what + ": num_tokens_post_pad");
                        assertArrayEquals(wantSorted, values(sorted), what + ": sorted_token_ids");
                        assertArrayEquals(wantExperts, values(eids), what + ": experts_ids");
                    }
                }
            }
        }
    }

    @Test
    void moeAlignBlockSizeRejectsBuffersTooSmallBeforeWriting() {
        for (Device dev : DEVICES) {
            try (Tensor topkIds = tensor(dev, DType.INT32, new double[] {0, 1, 2, 3}, 2, 2); Tensor sorted = tensor(dev, DType.INT32, new double[10], 10);
                 Tensor eids = tensor(dev, DType.INT32, new double[10], 10); Tensor post = tensor(dev, DType.INT32, new double[1], 1)) {
                assertThrows(SipuException.class, () -> D.call("_moe_C::moe_align_block_size", topkIds, 4L, 4L, sorted, eids, post), "on " + dev);
                assertArrayEquals(new double[10], values(sorted), "untouched on " + dev);
            }
        }
    }

    // ---- quantization and the fp8 GEMM: SIPU and CPU bit for bit ---------------------------

    @Test
    void perTokenQuantizationOnOddWidths() {
        SplittableRandom rnd = new SplittableRandom(18);
        for (DType t : FLOATS) {
            for (int[] th : new int[][] {{1, 7}, {9, 129}, {33, 7168}}) {
                int tokens = th[0], h = th[1];
                double[] x = stored(t, normal(rnd, tokens * h));
                x[0] = 0;
                if (h > 100) for (int i = 0; i < h; i++) x[h + i] = 0;   // a zero row
                for (int variant = 0; variant < 3; variant++) {
                    Map<Device, double[][]> got = new HashMap<>();
                    for (Device dev : DEVICES) {
                        boolean int8 = variant == 2;
                        try (Tensor xt = tensor(dev, t, x, tokens, h); Tensor out = tensor(dev, int8 ? DType.INT8 : DType.FLOAT8_E4M3FN, new double[tokens * h], tokens, h);
                             Tensor s = tensor(dev, DType.FLOAT32, new double[tokens], tokens, 1); Tensor ub = tensor(dev, DType.FLOAT32, new double[] {1.5}, 1)) {
                            D.call(int8 ? "_C::dynamic_scaled_int8_quant" : "_C::dynamic_per_token_scaled_fp8_quant",
                                    new Object[] {out, xt, s, variant == 1 ? ub : null}, Map.of());
                            got.put(dev, new double[][] {bitsOf(out), bitsOf(s)});
                        }
                    }
                    String what = "per-token quant variant " + variant + " " + t + " [" + tokens + ", " + h + "]";
                    assertArrayEquals(got.get(Device.SIPU0)[0], got.get(Device.CPU)[0], what + ": codes");
                    assertArrayEquals(got.get(Device.SIPU0)[1], got.get(Device.CPU)[1], what + ": scales");
                }
            }
        }
    }

    @Test
    void actQuantWeightDequantAndCacheWrites() {
        SplittableRandom rnd = new SplittableRandom(19);
        for (DType t : FLOATS) {
            double[] x = stored(t, normal(rnd, 3 * 5 * 384));
            for (int i = 0; i < 128; i++) x[128 + i] = 1e-7 * x[128 + i];   // a block below the 1e-4 floor
            for (String fmt : new String[] {null, "ue8m0"}) {
                Map<Device, double[][]> got = new HashMap<>();
                for (Device dev : DEVICES) {
                    try (Tensor xt = tensor(dev, t, x, 3, 5, 384)) {
                        @SuppressWarnings("unchecked")
                        List<Tensor> r = (List<Tensor>) D.call("deepseek::act_quant", new Object[] {xt, 128L, fmt}, Map.of());
                        try (Tensor y = r.get(0); Tensor s = r.get(1)) {
                            assertArrayEquals(new long[] {3, 5, 3}, s.sizes());
                            got.put(dev, new double[][] {bitsOf(y), bitsOf(s)});
                        }
                    }
                }
                assertArrayEquals(got.get(Device.SIPU0)[0], got.get(Device.CPU)[0], "act_quant " + t + " " + fmt + ": codes");
                assertArrayEquals(got.get(Device.SIPU0)[1], got.get(Device.CPU)[1], "act_quant " + t + " " + fmt + ": scales");
            }
        }
        // weight_dequant with partial edge blocks on both axes
        int m = 301, n = 259, block = 128;
        double[] w = e4m3Values(rnd, m * n), s = new double[3 * 3];
        for (int i = 0; i < s.length; i++) s[i] = (float) Math.scalb(1 + rnd.nextDouble(), -rnd.nextInt(8));
        double[] want = new double[m * n];
        for (int i = 0; i < m; i++) for (int j = 0; j < n; j++) want[i * n + j] = round(DType.BFLOAT16, (float) w[i * n + j] * (float) s[i / block * 3 + j / block]);
        for (Device dev : DEVICES) {
            try (Tensor wt = tensor(dev, DType.FLOAT8_E4M3FN, w, m, n); Tensor st = tensor(dev, DType.FLOAT32, s, 3, 3);
                 Tensor y = (Tensor) D.call("deepseek::weight_dequant", wt, st, (long) block)) {
                assertArrayEquals(want, values(y), "weight_dequant on " + dev);
            }
        }
        // concat_and_cache_mla: strided kv_c/k_pe rows (slices of one projection), padding slots, fp8 and auto
        int tokens = 9, rank = 512, rope = 64, blocks = 4, blockSize = 16;
        double[] proj = stored(DType.BFLOAT16, normal(rnd, (tokens + 2) * (rank + rope)));
        double[] slots = {3, -1, 17, 63, 0, 40, -1, 22, 5, 1, 2};
        for (String kind : new String[] {"auto", "fp8"}) {
            DType cacheType = kind.equals("auto") ? DType.BFLOAT16 : DType.UINT8;
            Map<Device, double[]> got = new HashMap<>();
            for (Device dev : DEVICES) {
                try (Tensor p = tensor(dev, DType.BFLOAT16, proj, tokens + 2, rank + rope);
                     Tensor kv = p.asStrided(new long[] {tokens + 2, rank}, new long[] {rank + rope, 1}, 0);
                     Tensor pe = p.asStrided(new long[] {tokens + 2, rope}, new long[] {rank + rope, 1}, rank);
                     Tensor cache = tensor(dev, cacheType, new double[blocks * blockSize * (rank + rope)], blocks, blockSize, rank + rope);
                     Tensor sm = tensor(dev, DType.INT64, Arrays.copyOf(slots, tokens), tokens); Tensor scale = tensor(dev, DType.FLOAT32, new double[] {0.05}, 1)) {
                    D.call("_C_cache_ops::concat_and_cache_mla", kv, pe, cache, sm, kind, scale);
                    got.put(dev, bitsOf(cache));
                }
            }
            assertArrayEquals(got.get(Device.SIPU0), got.get(Device.CPU), "concat_and_cache_mla " + kind);
        }
    }

    @Test
    void concatAndCacheMlaRejectsASlotBeyondTheCacheBeforeWriting() {
        for (Device dev : DEVICES) {
            try (Tensor kv = tensor(dev, DType.FLOAT32, normal(new SplittableRandom(21), 3 * 8), 3, 8);
                 Tensor pe = tensor(dev, DType.FLOAT32, normal(new SplittableRandom(22), 3 * 4), 3, 4);
                 Tensor cache = tensor(dev, DType.FLOAT32, new double[2 * 4 * 12], 2, 4, 12);
                 Tensor slots = tensor(dev, DType.INT64, new double[] {0, 3, 8}, 3); Tensor scale = tensor(dev, DType.FLOAT32, new double[] {1}, 1)) {
                assertThrows(SipuException.class, () -> D.call("_C_cache_ops::concat_and_cache_mla", kv, pe, cache, slots, "auto", scale), "on " + dev);
                assertArrayEquals(new double[2 * 4 * 12], values(cache), "cache untouched on " + dev);
            }
        }
    }

    /**
     * DeepSeek's fp8_gemm on odd M (1 and 37: decode and prefill), N not a multiple of 128, K with
     * a partial last block: SIPU and CPU bit for bit, both near a double-precision reference.
     */
    @Test
    void fp8GemmOnOddShapes() {
        SplittableRandom rnd = new SplittableRandom(20);
        for (int[] mnk : new int[][] {{1, 300, 256}, {37, 129, 640}, {5, 1, 200}, {70, 260, 1024}}) {
            int m = mnk[0], n = mnk[1], k = mnk[2], kb = (k + 127) / 128, nb = (n + 127) / 128;
            double[] a = e4m3Values(rnd, m * k), b = e4m3Values(rnd, n * k), as = new double[m * kb], bs = new double[nb * kb];
            for (int i = 0; i < as.length; i++) as[i] = (float) (rnd.nextDouble() * 0.01 + 1e-4);
            for (int i = 0; i < bs.length; i++) bs[i] = (float) (rnd.nextDouble() * 0.01 + 1e-4);
            double[] want = new double[m * n], magnitude = new double[m * n];
            for (int i = 0; i < m; i++) {
                for (int j = 0; j < n; j++) {
                    double acc = 0, mag = 0;
                    for (int q = 0; q < kb; q++) {
                        double part = 0, abs = 0;
                        for (int p = q * 128; p < Math.min(k, q * 128 + 128); p++) {
                            part += a[i * k + p] * b[j * k + p];
                            abs += Math.abs(a[i * k + p] * b[j * k + p]);
                        }
                        acc += part * as[i * kb + q] * bs[j / 128 * kb + q];
                        mag += abs * as[i * kb + q] * bs[j / 128 * kb + q];
                    }
                    want[i * n + j] = acc;
                    magnitude[i * n + j] = mag;
                }
            }
            Map<Device, double[]> got = new HashMap<>();
            for (Device dev : DEVICES) {
                try (Tensor at = tensor(dev, DType.FLOAT8_E4M3FN, a, m, k); Tensor ast = tensor(dev, DType.FLOAT32, as, m, kb);
                     Tensor bt = tensor(dev, DType.FLOAT8_E4M3FN, b, n, k); Tensor bst = tensor(dev, DType.FLOAT32, bs, nb, kb);
                     Tensor out = (Tensor) D.call("deepseek::fp8_gemm", at, ast, bt, bst)) {
                    assertEquals(DType.BFLOAT16, out.dtype());
                    got.put(dev, values(out));
                }
            }
            String what = "fp8_gemm [" + m + ", " + k + "] x [" + n + ", " + k + "]";
            // Each device against the reference, not against each other: the fp32 sums' order is free
            // (SIPU's blocked bf16 dots and CPU's lanes differ), so a bf16 rounding may land either side.
            for (Device dev : DEVICES) {
                double[] v = got.get(dev);
                for (int i = 0; i < want.length; i++) {
                    // one bf16 rounding, plus the fp32 sums' error where the terms cancel
                    if (Math.abs(v[i] - want[i]) > ulp(DType.BFLOAT16, want[i]) + 1e-6 * magnitude[i]) {
                        fail(what + " on " + dev + ": element " + i + " is " + v[i] + ", expected " + want[i]);
                    }
                }
            }
        }
    }

    // ---- helpers ----------------------------------------------------------------------------

    static double[] normal(SplittableRandom rnd, int n) {
        double[] v = new double[n];
        for (int i = 0; i < n; i++) v[i] = rnd.nextGaussian();
        return v;
    }

    /** Random finite e4m3 values of both signs, every exponent. */
    static double[] e4m3Values(SplittableRandom rnd, int n) {
        double[] v = new double[n];
        for (int i = 0; i < n; i++) {
            int code = rnd.nextInt(256);
            if ((code & 0x7F) == 0x7F) code &= 0xFE;   // not NaN
            v[i] = Conversions.e4m3ToFloat((byte) code);
        }
        return v;
    }

    /** The value fp32 v takes in dtype t. */
    static double round(DType t, float v) {
        return switch (t) {
            case BFLOAT16 -> Conversions.bf16ToFloat(Conversions.floatToBf16(v));
            case FLOAT16 -> Conversions.f16ToFloat(Conversions.floatToF16(v));
            default -> v;
        };
    }

    private static double round(DType t, double v) {
        return round(t, (float) v);
    }

    /** The values as dtype t holds them. */
    static double[] stored(DType t, double[] v) {
        double[] r = new double[v.length];
        for (int i = 0; i < v.length; i++) r[i] = round(t, (float) v[i]);
        return r;
    }

    /** A contiguous tensor of dtype t holding v (rounded to t), on the device. */
    static Tensor tensor(Device dev, DType t, double[] v, long... shape) {
        return AtenCrossCheckTest.tensor(v, t, dev, shape);
    }

    /** Every element of t (any strides, any device) in row-major order. */
    static double[] values(Tensor t) {
        try (Tensor host = D.to(t, Device.CPU)) {
            double[] r = new double[Math.toIntExact(host.numel())];
            for (int i = 0; i < r.length; i++) {
                r[i] = host.dtype().isFloatingPoint() ? Elements.getDouble(host, i) : Elements.getLong(host, i);
            }
            return r;
        }
    }

    /** The raw bits of every element (NaNs and -0 compared exactly). */
    static double[] bitsOf(Tensor t) {
        try (Tensor host = D.to(t, Device.CPU)) {
            double[] r = new double[Math.toIntExact(host.numel())];
            long item = host.dtype().itemSize();
            for (int i = 0; i < r.length; i++) {
                long at = Elements.byteOffsetOf(host, i);
                r[i] = switch ((int) item) {
                    case 1 -> host.storage().memory().get(ValueLayout.JAVA_BYTE, at);
                    case 2 -> host.storage().memory().get(ValueLayout.JAVA_SHORT_UNALIGNED, at);
                    case 4 -> host.storage().memory().get(ValueLayout.JAVA_INT_UNALIGNED, at);
                    default -> host.storage().memory().get(ValueLayout.JAVA_LONG_UNALIGNED, at);
                };
            }
            return r;
        }
    }

    /** One unit in the last place of dtype t at magnitude v (NaN only matches NaN). */
    static double ulp(DType t, double v) {
        float f = (float) Math.abs(v);
        return switch (t) {
            case BFLOAT16 -> Math.ulp(f) * 65536.0;
            case FLOAT16 -> Math.max(Math.ulp(f) * 8192.0, 0x1p-24);
            default -> Math.ulp(f);
        };
    }

    static void closeUlps(String what, double[] want, double[] got, DType t, int ulps) {
        assertEquals(want.length, got.length, what + ": element count");
        for (int i = 0; i < want.length; i++) {
            if (Double.isNaN(want[i]) != Double.isNaN(got[i])
                    || Math.abs(got[i] - want[i]) > ulps * Math.max(ulp(t, want[i]), ulp(t, got[i]))) {
                fail(what + ": element " + i + " is " + got[i] + ", expected " + want[i] + " (within " + ulps + " ulps of " + t + ")");
            }
        }
    }
}
