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
 * GQA, head dims off the vector width, windows with softcap, and the same keys through a paged cache
 * with a shuffled block table. SIPU and CPU against a plain double-precision reference that builds the
 * whole score matrix; a block id beyond the cache raises before out is written.
 */
class AttentionCrossCheckTest {
    private static final Dispatcher D = Dispatcher.standard().strict(true);
    private static final Device[] DEVICES = {Device.CPU, Device.SIPU0};

    private static final int[] LQ = {1, 37, 5}, LK = {700, 37, 90};
    private static final int HQ = 6, HK = 2;

    @Test
    void packedAndPagedMatchAFullScoreMatrix() {
        for (int d : new int[] {72, 128}) {
            for (long[] win : new long[][] {{-1, 0}, {20, 0}, {-1, -1}}) {
                double softcap = win[0] == 20 ? 15.0 : 0.0;
                check(d, win[0], win[1], softcap);
            }
        }
    }

    @SuppressWarnings("unchecked")
    private void check(int d, long wl, long wr, double softcap) {
        SplittableRandom rnd = new SplittableRandom(d * 31L + wl);
        int b = LQ.length, tq = 0, tk = 0;
        int[] cuQ = new int[b + 1], cuK = new int[b + 1];
        for (int s = 0; s < b; s++) {
            cuQ[s + 1] = tq += LQ[s];
            cuK[s + 1] = tk += LK[s];
        }
        double[] q = rand(rnd, tq * HQ * d), k = rand(rnd, tk * HK * d), v = rand(rnd, tk * HK * d);
        double scale = 1 / Math.sqrt(d);
        double[] want = new double[tq * HQ * d], wantLse = new double[HQ * tq];
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
                        for (int c = 0; c < d; c++) want[(row * HQ + h) * d + c] += p * v[((cuK[s] + j) * HK + kh) * d + c];
                    }
                    wantLse[h * tq + row] = sum > 0 ? max + Math.log(sum) : Double.POSITIVE_INFINITY;
                }
        String what = "d=" + d + " window=(" + wl + ", " + wr + ") softcap=" + softcap;
        // the paged layout: blocks of 16 keys, each sequence's blocks shuffled through the cache
        int page = 16, perSeq = (Math.max(LK[0], Math.max(LK[1], LK[2])) + page - 1) / page, blocks = b * perSeq;
        double[] table = new double[b * perSeq], kc = new double[blocks * page * HK * d], vc = new double[kc.length], used = new double[b];
        for (int s = 0; s < b; s++) {
            used[s] = LK[s];
            for (int blk = 0; blk < perSeq; blk++) table[s * perSeq + blk] = (blk * b + s * 7 + 3) % blocks;
            for (int j = 0; j < LK[s]; j++) {
                int slot = (int) table[s * perSeq + j / page] * page + j % page;
                System.arraycopy(k, (cuK[s] + j) * HK * d, kc, slot * HK * d, HK * d);
                System.arraycopy(v, (cuK[s] + j) * HK * d, vc, slot * HK * d, HK * d);
            }
        }
        for (Device dev : DEVICES) {
            try (Tensor tq_ = AtenCrossCheckTest.tensor(q, DType.FLOAT32, dev, tq, HQ, d);
                 Tensor tk_ = AtenCrossCheckTest.tensor(k, DType.FLOAT32, dev, tk, HK, d);
                 Tensor tv = AtenCrossCheckTest.tensor(v, DType.FLOAT32, dev, tk, HK, d);
                 Tensor cq = AtenCrossCheckTest.tensor(ints(cuQ), DType.INT32, dev, b + 1);
                 Tensor ck = AtenCrossCheckTest.tensor(ints(cuK), DType.INT32, dev, b + 1);
                 Tensor kcache = AtenCrossCheckTest.tensor(kc, DType.FLOAT32, dev, blocks, page, HK, d);
                 Tensor vcache = AtenCrossCheckTest.tensor(vc, DType.FLOAT32, dev, blocks, page, HK, d);
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
                double[] bad = table.clone();
                bad[perSeq + 1] = blocks; // one past the cache
                try (Tensor badTable = AtenCrossCheckTest.tensor(bad, DType.INT32, dev, b, perSeq);
                     Tensor out = AtenCrossCheckTest.tensor(new double[tq * HQ * d], DType.FLOAT32, dev, tq, HQ, d)) {
                    assertThrows(SipuException.class, () -> D.call("_vllm_fa2_C::varlen_fwd", tq_, kcache, vcache, out, cq, ck, tu, null,
                            badTable, null, (long) 37, (long) 700, 0.0, scale, false, false, wl, wr, softcap, false, 0L, null));
                    AtenCrossCheckTest.check("a refused call leaves out on " + dev, new double[tq * HQ * d], out, 0);
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
