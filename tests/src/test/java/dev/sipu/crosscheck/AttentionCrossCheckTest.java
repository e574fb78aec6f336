package dev.sipu.crosscheck;

import dev.sipu.api.DType;
import dev.sipu.api.Device;
import dev.sipu.api.SipuException;
import dev.sipu.api.Tensor;
import dev.sipu.dispatch.Dispatcher;
import org.junit.jupiter.api.Test;

import java.util.List;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertThrows;

/**
 * varlen_fwd on cases the recorded ones do not have: a 700-key decode row, a chunked prefill (Lq < Lk),
 * GQA, head dims 64, 72 (off the vector width), 128 and 192, DeepSeek MLA prefill's q/k dim 192 with
 * v dim 128 (directly, and as vLLM feeds FA2: V zero-padded to 192, output sliced back), windows with
 * softcap, and the same keys through a paged cache with a shuffled block table, also through
 * unified_attention when the window is causal. SIPU and CPU against a plain double-precision reference
 * that builds the whole score matrix; a block id beyond the cache raises before out is written.
 */
class AttentionCrossCheckTest {
    private static final Dispatcher D = Dispatcher.standard().strict(true);
    private static final Device[] DEVICES = {Device.CPU, Device.SIPU0};

    private static final int[] LQ = {1, 37, 5}, LK = {700, 37, 90};
    private static final int HQ = 6, HK = 2;

    @Test
    void packedAndPagedMatchAFullScoreMatrix() {
        for (int[] dims : new int[][] {{72, 72}, {128, 128}, {64, 64}, {192, 192}, {192, 128}}) { // qk dim, v dim
            for (long[] win : new long[][] {{-1, 0}, {20, 0}, {-1, -1}}) {
                double softcap = win[0] == 20 ? 15.0 : 0.0;
                check(dims[0], dims[1], win[0], win[1], softcap);
            }
        }
    }

    @SuppressWarnings("unchecked")
    private void check(int d, int dv, long wl, long wr, double softcap) {
        SplittableRandom rnd = new SplittableRandom(d * 31L + dv * 7L + wl);
        int b = LQ.length, tq = 0, tk = 0;
        int[] cuQ = new int[b + 1], cuK = new int[b + 1];
        for (int s = 0; s < b; s++) {
            cuQ[s + 1] = tq += LQ[s];
            cuK[s + 1] = tk += LK[s];
        }
        double[] q = rand(rnd, tq * HQ * d), k = rand(rnd, tk * HK * d), v = rand(rnd, tk * HK * dv);
        double scale = 1 / Math.sqrt(d);
        double[] want = new double[tq * HQ * dv], wantLse = new double[HQ * tq];
        for (int s = 0; s < b; s++)
            for (int i = 0; i < LQ[s]; i++)
                for (int h = 0; h < HQ; h++) {
                    int row = cuQ[s] + i, kh = h / (HQ / HK);
                    long pos = i + LK[s] - LQ[s];
                    double[] sc = new double[LK[s]];
                    double max = Double.NEGATIVE_INFINITY;
                    for (int j = 0; j < LK[s]; j++) {
                        boolean visible = (wr < 0 || j <= pos + wr) && (wl < 0 || j >= pos - wl);
                        double x = 0;
                        for (int c = 0; c < d; c++) x += q[(row * HQ + h) * d + c] * k[((cuK[s] + j) * HK + kh) * d + c];
                        x *= scale;
                        if (softcap > 0) x = softcap * Math.tanh(x / softcap);
                        sc[j] = visible ? x : Double.NEGATIVE_INFINITY;
                        max = Math.max(max, sc[j]);
                    }
                    double sum = 0;
                    for (int j = 0; j < LK[s]; j++) sum += sc[j] == Double.NEGATIVE_INFINITY ? 0 : Math.exp(sc[j] - max);
                    for (int j = 0; j < LK[s]; j++) {
                        if (sc[j] == Double.NEGATIVE_INFINITY) continue;
                        double p = Math.exp(sc[j] - max) / sum;
                        for (int c = 0; c < dv; c++) want[(row * HQ + h) * dv + c] += p * v[((cuK[s] + j) * HK + kh) * dv + c];
                    }
                    wantLse[h * tq + row] = sum > 0 ? max + Math.log(sum) : Double.POSITIVE_INFINITY;
                }
        String what = "d=" + d + " dv=" + dv + " window=(" + wl + ", " + wr + ") softcap=" + softcap;
        // the paged layout: blocks of 16 keys, each sequence's blocks shuffled through the cache
        int page = 16, perSeq = (Math.max(LK[0], Math.max(LK[1], LK[2])) + page - 1) / page, blocks = b * perSeq;
        double[] table = new double[b * perSeq], kc = new double[blocks * page * HK * d], vc = new double[blocks * page * HK * dv], used = new double[b];
        for (int s = 0; s < b; s++) {
            used[s] = LK[s];
            for (int blk = 0; blk < perSeq; blk++) table[s * perSeq + blk] = (blk * b + s * 7 + 3) % blocks;
            for (int j = 0; j < LK[s]; j++) {
                int slot = (int) table[s * perSeq + j / page] * page + j % page;
                System.arraycopy(k, (cuK[s] + j) * HK * d, kc, slot * HK * d, HK * d);
                System.arraycopy(v, (cuK[s] + j) * HK * dv, vc, slot * HK * dv, HK * dv);
            }
        }
        for (Device dev : DEVICES) {
            try (Tensor tq_ = AtenCrossCheckTest.tensor(q, DType.FLOAT32, dev, tq, HQ, d);
                 Tensor tk_ = AtenCrossCheckTest.tensor(k, DType.FLOAT32, dev, tk, HK, d);
                 Tensor tv = AtenCrossCheckTest.tensor(v, DType.FLOAT32, dev, tk, HK, dv);
                 Tensor cq = AtenCrossCheckTest.tensor(ints(cuQ), DType.INT32, dev, b + 1);
                 Tensor ck = AtenCrossCheckTest.tensor(ints(cuK), DType.INT32, dev, b + 1);
                 Tensor kcache = AtenCrossCheckTest.tensor(kc, DType.FLOAT32, dev, blocks, page, HK, d);
                 Tensor vcache = AtenCrossCheckTest.tensor(vc, DType.FLOAT32, dev, blocks, page, HK, dv);
                 Tensor tt = AtenCrossCheckTest.tensor(table, DType.INT32, dev, b, perSeq);
                 Tensor tu = AtenCrossCheckTest.tensor(used, DType.INT32, dev, b)) {
                List<Tensor> packed = (List<Tensor>) D.call("_vllm_fa2_C::varlen_fwd", tq_, tk_, tv, null, cq, ck, null, null, null, null,
                        (long) 37, (long) 700, 0.0, scale, false, false, wl, wr, softcap, false, 0L, null);
                List<Tensor> paged = (List<Tensor>) D.call("_vllm_fa2_C::varlen_fwd", tq_, kcache, vcache, null, cq, ck, tu, null, tt, null,
                        (long) 37, (long) 700, 0.0, scale, false, false, wl, wr, softcap, false, 0L, null);
                try (Tensor o1 = packed.get(0); Tensor l1 = packed.get(1); Tensor o2 = paged.get(0); Tensor l2 = paged.get(1)) {
                    AtenCrossCheckTest.check("packed " + what + " on " + dev, want, o1, 2e-5);
                    AtenCrossCheckTest.check("packed lse " + what + " on " + dev, wantLse, l1, 2e-5);
                    AtenCrossCheckTest.check("paged " + what + " on " + dev, want, o2, 2e-5);
                    AtenCrossCheckTest.check("paged lse " + what + " on " + dev, wantLse, l2, 2e-5);
                }
                if (wr == 0) {
                    try (Tensor out = AtenCrossCheckTest.tensor(new double[tq * HQ * dv], DType.FLOAT32, dev, tq, HQ, dv)) {
                        D.call("vllm::unified_attention", tq_, kcache, vcache, out, cq, (long) 37, tu, (long) 700, scale, true,
                                new long[] {wl, -1}, tt, softcap);
                        AtenCrossCheckTest.check("unified_attention " + what + " on " + dev, want, out, 2e-5);
                    }
                }
                if (dv < d) {
                    // vLLM's MLA prefill on FA2: V zero-padded to the qk dim, the output's extra columns are zero
                    double[] vPad = new double[tk * HK * d], wantPad = new double[tq * HQ * d];
                    for (int r = 0; r < tk * HK; r++) System.arraycopy(v, r * dv, vPad, r * d, dv);
                    for (int r = 0; r < tq * HQ; r++) System.arraycopy(want, r * dv, wantPad, r * d, dv);
                    try (Tensor tvp = AtenCrossCheckTest.tensor(vPad, DType.FLOAT32, dev, tk, HK, d)) {
                        List<Tensor> padded = (List<Tensor>) D.call("_vllm_fa2_C::varlen_fwd", tq_, tk_, tvp, null, cq, ck, null, null, null,
                                null, (long) 37, (long) 700, 0.0, scale, false, false, wl, wr, softcap, false, 0L, null);
                        try (Tensor o3 = padded.get(0); Tensor l3 = padded.get(1)) {
                            AtenCrossCheckTest.check("V zero-padded " + what + " on " + dev, wantPad, o3, 2e-5);
                            AtenCrossCheckTest.check("V zero-padded lse " + what + " on " + dev, wantLse, l3, 2e-5);
                        }
                    }
                }
                double[] bad = table.clone();
                bad[perSeq + 1] = blocks; // one past the cache
                try (Tensor badTable = AtenCrossCheckTest.tensor(bad, DType.INT32, dev, b, perSeq);
                     Tensor out = AtenCrossCheckTest.tensor(new double[tq * HQ * dv], DType.FLOAT32, dev, tq, HQ, dv)) {
                    assertThrows(SipuException.class, () -> D.call("_vllm_fa2_C::varlen_fwd", tq_, kcache, vcache, out, cq, ck, tu, null,
                            badTable, null, (long) 37, (long) 700, 0.0, scale, false, false, wl, wr, softcap, false, 0L, null));
                    AtenCrossCheckTest.check("a refused call leaves out on " + dev, new double[tq * HQ * dv], out, 0);
                }
            }
        }
    }

    private static double[] ints(int[] v) {
        double[] r = new double[v.length];
        for (int i = 0; i < v.length; i++) r[i] = v[i];
        return r;
    }

    private static double[] rand(SplittableRandom rnd, int n) {
        double[] r = new double[n];
        for (int i = 0; i < n; i++) r[i] = rnd.nextDouble() * 2 - 1;
        return r;
    }
}
