package dev.sipu.cpu.kernels;

import dev.sipu.api.DType;
import dev.sipu.api.Elements;
import dev.sipu.api.Tensor;
import dev.sipu.cpu.iter.Parallel;
import dev.sipu.cpu.simd.E4m3;
import dev.sipu.cpu.simd.Floats;
import dev.sipu.cpu.simd.Vec;
import dev.sipu.dispatch.Call;
import dev.sipu.dispatch.meta.ExpertsMeta;
import dev.sipu.dispatch.spi.Registrar;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.Arrays;

import static dev.sipu.dispatch.DispatchKey.CPU;

/**
 * vLLM's inplace_fused_experts on CPU, the same plan as the SIPU kernel (kernels-c experts.c):
 * pairs grouped by expert, GEMM1 -> silu_and_mul -> GEMM2 with each expert's weight rows decoded
 * once per 32-row block, and hidden_states written only after every id has been checked. Every
 * intermediate stays fp32 and each token's sum is rounded once (the reading the recorded cases
 * follow exactly; experts.c explains why it matters for FP8).
 */
public final class ExpertsKernels {
    private ExpertsKernels() {}

    private static final int QB = 128, NB = 32;

    public static void register(Registrar r) {
        r.register("vllm::inplace_fused_experts", CPU, c -> {
            run(c, ExpertsMeta.of(c));
            return null;
        });
    }

    private static void run(Call c, ExpertsMeta.Plan p) {
        int T = Math.toIntExact(p.tokens()), H = Math.toIntExact(p.hiddenSize()), E = Math.toIntExact(p.experts());
        int I = Math.toIntExact(p.intermediate()), K = Math.toIntExact(p.topk()), P = Math.multiplyExact(T, K);
        if (P == 0 || H == 0) return;
        // Every id checked and mapped before anything else.
        int[] local = new int[P], off = new int[E + 1];
        for (int q = 0; q < P; q++) {
            long id = Elements.getLong(p.topkIds(), q);
            if (id < 0 || id >= p.globalExperts()) {
                throw c.error(4, "topk_ids[" + q / K + ", " + q % K + "] = " + id + " outside [0, " + p.globalExperts() + ")");
            }
            if (p.expertMap() != null) {
                id = Elements.getLong(p.expertMap(), id);
                if (id < -1 || id >= E) throw c.error(13, "sends an id to " + id + ", outside [-1, " + E + ")");
            }
            local[q] = (int) id;
            if (id >= 0) off[(int) id + 1]++;
        }
        for (int e = 0; e < E; e++) off[e + 1] += off[e];
        int v = off[E];
        int[] order = new int[v], slot = new int[P], fill = new int[E];
        for (int q = 0; q < P; q++) {
            slot[q] = -1;
            if (local[q] >= 0) {
                int at = off[local[q]] + fill[local[q]]++;
                order[at] = q;
                slot[q] = at;
            }
        }
        DType t = p.hidden().dtype();
        boolean fp8 = p.fp8();
        int kh = (H + QB - 1) / QB, ki = (I + QB - 1) / QB;
        float[] x = new float[Math.multiplyExact(v, H)], h1 = new float[Math.multiplyExact(v, 2 * I)];
        float[] h2 = new float[Math.multiplyExact(v, I)], h3 = new float[Math.multiplyExact(v, H)];
        float[] xs = fp8 ? new float[v * kh] : null, hs = fp8 ? new float[v * ki] : null;
        Tensor hid = p.hidden();
        long item = t.itemSize();
        MemorySegment hm = hid.storage().memory();
        long[] hst = hid.strides();
        for (int r = 0; r < v; r++) {
            int tok = order[r] / K;
            Floats.load(t, hm, hid.byteOffset() + tok * hst[0] * item, hst[1] * item, x, r * H, H);
            if (fp8) quantRow(x, r * H, H, xs, r * kh);
        }
        float[] w = new float[P];
        for (int q = 0; q < P; q++) w[q] = (float) Elements.getDouble(p.topkWeights(), q);
        gemm(p.w1(), p.w1Scale(), E, 2 * I, H, off, x, xs, h1);
        for (int r = 0; r < v; r++) {
            int at = r * 2 * I;
            if (p.onInput()) { // the router weight scales the fp32 accumulator
                for (int j = at; j < at + 2 * I; j++) h1[j] *= w[order[r]];
            }
            float[] g = new float[Vec.padded(I)], u = new float[Vec.padded(I)]; // Vec runs over whole vectors
            System.arraycopy(h1, at, g, 0, I);
            System.arraycopy(h1, at + I, u, 0, I);
            Vec.silu(g, g, I);
            Vec.mul(g, u, g, I);
            System.arraycopy(g, 0, h2, r * I, I);
            if (fp8) quantRow(h2, r * I, I, hs, r * ki);
        }
        gemm(p.w2(), p.w2Scale(), E, H, I, off, h2, hs, h3);
        // The only writes to hidden_states: per token, the slots in order, one rounding at the store.
        float[] sum = new float[Vec.padded(H)], term = new float[Vec.padded(H)];
        for (int tok = 0; tok < T; tok++) {
            Arrays.fill(sum, 0);
            for (int k = 0; k < K; k++) {
                int q = tok * K + k, r = slot[q];
                if (r < 0) continue;
                System.arraycopy(h3, r * H, term, 0, H);
                if (!p.onInput()) Vec.scale(term, w[q], term, H);
                Vec.add(sum, term, sum, H);
            }
            Floats.store(sum, 0, H, t, hm, hid.byteOffset() + tok * hst[0] * item, hst[1] * item);
        }
    }

    /** per_token_group_quant_fp8 in place: x becomes its e4m3 values (decoded, exact), s the group scales. */
    private static void quantRow(float[] x, int at, int n, float[] s, int sat) {
        for (int g = 0; g * QB < n; g++) {
            int lo = at + g * QB, len = Math.min(QB, n - g * QB);
            float amax = 0;
            for (int i = lo; i < lo + len; i++) amax = Math.max(amax, Math.abs(x[i]));
            float sc = Math.max(amax, 1e-10f) / 448.0f;
            s[sat + g] = sc;
            for (int i = lo; i < lo + len; i++) x[i] = E4m3.decode(E4m3.encodeSaturating(x[i] / sc));
        }
    }

    /** out[r, n] = x[r] . W[e][n] for each expert's rows; tasks are (expert, 32 weight rows). */
    private static void gemm(Tensor w, Tensor scale, int experts, int rows, int cols, int[] off, float[] x, float[] xs, float[] out) {
        int blocks = (rows + NB - 1) / NB, kb = (cols + QB - 1) / QB;
        DType wt = w.dtype();
        long item = wt.itemSize();
        long[] ws = w.strides();
        MemorySegment wm = w.storage().memory();
        Parallel.forEach(experts * blocks, task -> {
            int e = task / blocks, n0 = task % blocks * NB, n1 = Math.min(rows, n0 + NB), r0 = off[e], r1 = off[e + 1];
            if (r0 == r1) return;
            float[] wrow = new float[cols];
            for (int n = n0; n < n1; n++) {
                Floats.load(wt, wm, w.byteOffset() + (e * ws[0] + n * ws[1]) * item, item, wrow, 0, cols);
                for (int r = r0; r < r1; r++) {
                    float acc;
                    if (scale == null) {
                        acc = Vec.dot(x, r * cols, wrow, 0, cols);
                    } else {
                        acc = 0;
                        for (int b = 0; b < kb; b++) {
                            int lo = b * QB, len = Math.min(QB, cols - lo);
                            float sw = scale.storage().memory().get(ValueLayout.JAVA_FLOAT,
                                    scale.byteOffset() + (e * scale.strides()[0] + (n / QB) * scale.strides()[1] + b * scale.strides()[2]) * 4);
                            acc += Vec.dot(x, r * cols + lo, wrow, lo, len) * xs[r * kb + b] * sw;
                        }
                    }
                    out[r * rows + n] = acc;
                }
            }
        });
    }
}
