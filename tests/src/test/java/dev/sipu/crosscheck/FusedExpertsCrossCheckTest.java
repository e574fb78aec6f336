package dev.sipu.crosscheck;

import dev.sipu.api.DType;
import dev.sipu.api.Device;
import dev.sipu.api.OpArgumentException;
import dev.sipu.api.SipuException;
import dev.sipu.api.Tensor;
import dev.sipu.dispatch.Dispatcher;
import org.junit.jupiter.api.Test;

import java.util.Map;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;

/**
 * inplace_fused_experts on shapes the recorded cases do not have (odd token counts, 16 experts, top-3,
 * an expert map with -1 entries), SIPU and CPU against a plain per-token loop of SEMANTICS.md §10's
 * formula in double precision; a bad id raises and leaves hidden_states untouched.
 */
class FusedExpertsCrossCheckTest {
    private static final Dispatcher D = Dispatcher.standard().strict(true);
    private static final Device[] DEVICES = {Device.CPU, Device.SIPU0};

    @Test
    void float32ExpertsMatchAPerTokenLoop() {
        SplittableRandom rnd = new SplittableRandom(9);
        int t = 37, h = 100, inter = 72, e = 16, k = 3, global = 20; // widths off the vector width
        double[] a = rand(rnd, t * h, 1), w1 = rand(rnd, e * 2 * inter * h, 0.1), w2 = rand(rnd, e * h * inter, 0.1);
        double[] ids = new double[t * k], tw = new double[t * k], map = new double[global];
        for (int g = 0; g < global; g++) map[g] = g % 5 == 4 ? -1 : g * 7 % e; // four global ids live elsewhere
        for (int i = 0; i < t * k; i++) {
            ids[i] = rnd.nextInt(global);
            tw[i] = rnd.nextDouble();
        }
        double[] want = new double[t * h];
        for (int tok = 0; tok < t; tok++)
            for (int s = 0; s < k; s++) {
                int le = (int) map[(int) ids[tok * k + s]];
                if (le < 0) continue;
                double[] h2 = new double[inter];
                for (int j = 0; j < inter; j++) {
                    double g = 0, u = 0;
                    for (int c = 0; c < h; c++) {
                        g += a[tok * h + c] * w1[(le * 2 * inter + j) * h + c];
                        u += a[tok * h + c] * w1[(le * 2 * inter + inter + j) * h + c];
                    }
                    h2[j] = g / (1 + Math.exp(-g)) * u;
                }
                for (int c = 0; c < h; c++) {
                    double acc = 0;
                    for (int j = 0; j < inter; j++) acc += h2[j] * w2[(le * h + c) * inter + j];
                    want[tok * h + c] += acc * tw[tok * k + s];
                }
            }
        for (Device dev : DEVICES) {
            try (Tensor x = AtenCrossCheckTest.tensor(a, DType.FLOAT32, dev, t, h);
                 Tensor tw1 = AtenCrossCheckTest.tensor(w1, DType.FLOAT32, dev, e, 2 * inter, h);
                 Tensor tw2 = AtenCrossCheckTest.tensor(w2, DType.FLOAT32, dev, e, h, inter);
                 Tensor weights = AtenCrossCheckTest.tensor(tw, DType.FLOAT32, dev, t, k);
                 Tensor tids = AtenCrossCheckTest.tensor(ids, DType.INT32, dev, t, k);
                 Tensor tmap = AtenCrossCheckTest.tensor(map, DType.INT32, dev, global)) {
                D.call("vllm::inplace_fused_experts", new Object[] {x, tw1, tw2, weights, tids}, Map.of("expert_map", tmap));
                AtenCrossCheckTest.check("fused experts on " + dev, want, x, 2e-4);
                double[] bad = ids.clone();
                bad[5] = global;
                try (Tensor badIds = AtenCrossCheckTest.tensor(bad, DType.INT64, dev, t, k)) {
                    SipuException ex = assertThrows(SipuException.class, () -> D.call("vllm::inplace_fused_experts",
                            new Object[] {x, tw1, tw2, weights, badIds}, Map.of("expert_map", tmap)));
                    AtenCrossCheckTest.check("a refused call leaves hidden_states on " + dev, want, x, 2e-4);
                    if (dev.isCpu()) assertInstanceOf(OpArgumentException.class, ex, "the CPU check names the argument");
                }
            }
        }
    }

    private static double[] rand(SplittableRandom rnd, int n, double scale) {
        double[] v = new double[n];
        for (int i = 0; i < n; i++) v[i] = (rnd.nextDouble() * 2 - 1) * scale;
        return v;
    }
}
