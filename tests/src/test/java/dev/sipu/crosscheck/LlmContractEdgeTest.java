package dev.sipu.crosscheck;

import dev.sipu.api.DType;
import dev.sipu.api.Device;
import dev.sipu.api.SipuException;
import dev.sipu.api.Tensor;
import dev.sipu.dispatch.Dispatcher;
import org.junit.jupiter.api.Test;

import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;

import static dev.sipu.crosscheck.LlmCrossCheckTest.bitsOf;
import static dev.sipu.crosscheck.LlmCrossCheckTest.cosSinCache;
import static dev.sipu.crosscheck.LlmCrossCheckTest.normal;
import static dev.sipu.crosscheck.LlmCrossCheckTest.round;
import static dev.sipu.crosscheck.LlmCrossCheckTest.rotaryReference;
import static dev.sipu.crosscheck.LlmCrossCheckTest.stored;
import static dev.sipu.crosscheck.LlmCrossCheckTest.tensor;
import static dev.sipu.crosscheck.LlmCrossCheckTest.values;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Corner cases of the non-aten op contracts (OPS.md, SEMANTICS.md) that the recorded torch-2.11
 * cases do not exercise: other dtypes of the cos/sin cache and the positions, padded head layouts,
 * fp8 saturation in the cache writes and the quantizers, scale_ub, ties of the int8 rounding,
 * ue8m0 scales, int64 routing ids. Every expected value comes from a plain reference written here
 * from the contract text (its own e4m3 encoder included), on both devices.
 */
class LlmContractEdgeTest {
    private static final Dispatcher D = Dispatcher.standard().strict(true);
    private static final Device[] DEVICES = {Device.SIPU0, Device.CPU};

    // ---- an independent e4m3fn encoder (SEMANTICS.md §0.2, the saturating conversion) -------

    /** The value of e4m3fn code {@code c} (0..126, positive, not NaN). */
    static double e4m3Value(int c) {
        int e = c >> 3, m = c & 7;
        return e == 0 ? m * 0x1p-9 : (1 + m / 8.0) * Math.scalb(1.0, e - 7);
    }

    /** Saturating round-to-nearest-even of fp32 v to an e4m3fn code (the byte). */
    static int e4m3Sat(float v) {
        if (Float.isNaN(v)) return 0x7F;
        int sign = (Float.floatToRawIntBits(v) >>> 31) << 7;
        double a = Math.abs((double) v);
        int best = 0;
        for (int c = 1; c <= 126; c++) {
            double d = Math.abs(e4m3Value(c) - a), db = Math.abs(e4m3Value(best) - a);
            if (d < db || d == db && (c & 1) == 0) best = c;
        }
        if (a >= 448) best = 126;
        return sign | best;
    }

    // ---- silu_and_mul -----------------------------------------------------------------------

    /**
     * SEMANTICS.md §3: out = round(round(silu(a)) * b), silu(a) = a / (1 + exp(-a)) in fp32, on an
     * input whose rows are spaced apart ([2, 3, 2d] viewed out of [2, 3, 2d + 6]) and with the edge
     * values: -inf gives NaN, a very negative a gives -0, NaN propagates, fp16 products overflow to inf.
     */
    @Test
    void siluAndMulOnRowStridedInputAndEdgeValues() {
        SplittableRandom rnd = new SplittableRandom(38);
        int b0 = 2, b1 = 3, d = 19, pad = 6, rows = b0 * b1, w = 2 * d + pad;
        for (DType t : new DType[] {DType.FLOAT32, DType.BFLOAT16, DType.FLOAT16}) {
            double[] x = stored(t, normal(rnd, rows * w));
            x[0] = Double.NEGATIVE_INFINITY;
            x[1] = -200;
            x[2] = Double.NaN;
            x[w + 3] = 60000;
            x[w + 3 + d] = 60000;   // 3.6e9: inf in fp16, finite in bf16 and fp32
            x = stored(t, x);
            double[] want = new double[rows * d];
            for (int r = 0; r < rows; r++) {
                for (int i = 0; i < d; i++) {
                    float a = (float) x[r * w + i], bb = (float) x[r * w + d + i];
                    float silu = a / (1f + (float) Math.exp(-a));
                    want[r * d + i] = round(t, (float) round(t, silu) * bb);
                }
            }
            for (Device dev : DEVICES) {
                try (Tensor xs = tensor(dev, t, x, b0, b1, w);
                     Tensor xv = xs.asStrided(new long[] {b0, b1, 2 * d}, new long[] {(long) b1 * w, w, 1}, 0);
                     Tensor out = tensor(dev, t, new double[rows * d], b0, b1, d)) {
                    D.call("_C::silu_and_mul", out, xv);
                    double[] got = values(out);
                    String what = "silu_and_mul " + t + " on " + dev;
                    assertTrue(Double.isNaN(got[0]) && Double.isNaN(got[2]), what + ": -inf and NaN give NaN");
                    assertTrue(want[1] == 0 && Double.doubleToRawLongBits(want[1]) == Double.doubleToRawLongBits(got[1]), what + ": silu(-200) is -0, times b");
                    assertEquals(t == DType.FLOAT16 ? Double.POSITIVE_INFINITY : want[d + 3], got[d + 3], what + ": large product");
                    LlmCrossCheckTest.closeUlps(what, want, got, t, t == DType.FLOAT32 ? 2 : 0);
                }
            }
        }
    }

    // ---- rotary_embedding -------------------------------------------------------------------

    /**
     * SEMANTICS.md §4: the cache may have another float dtype than the query (each value read as
     * fp32), positions int32 or int64, query/key [T, heads, D] with a head stride beyond D (padded
     * heads), partial rot_dim with both pairings.
     */
    @Test
    void rotaryEmbeddingWithOtherCacheDtypesInt32PositionsAndPaddedHeads() {
        SplittableRandom rnd = new SplittableRandom(31);
        int maxPos = 97, tokens = 6, qHeads = 3, kHeads = 2, pad = 5;
        DType[] floats = {DType.FLOAT32, DType.BFLOAT16, DType.FLOAT16};
        for (DType t : floats) {
            for (DType ct : floats) {
                for (int[] dims : new int[][] {{64, 32}, {40, 40}, {192, 64}, {16, 2}}) {
                    int head = dims[0], rot = dims[1];
                    double[] cache = stored(ct, cosSinCache(maxPos, rot));
                    for (boolean neox : new boolean[] {true, false}) {
                        for (DType pt : new DType[] {DType.INT32, DType.INT64}) {
                            double[] pos = new double[tokens];
                            for (int i = 0; i < tokens; i++) pos[i] = rnd.nextInt(maxPos);
                            double[] q = stored(t, normal(rnd, tokens * qHeads * head)), k = stored(t, normal(rnd, tokens * kHeads * head));
                            double[] wantQ = rotaryReference(t, q, pos, cache, qHeads, head, rot, neox);
                            double[] wantK = rotaryReference(t, k, pos, cache, kHeads, head, rot, neox);
                            for (Device dev : DEVICES) {
                                // query and key live in [T, heads, head + pad] storage, viewed as [T, heads, head]
                                double[] qs = padded(q, tokens * qHeads, head, pad), ks = padded(k, tokens * kHeads, head, pad);
                                try (Tensor p = tensor(dev, pt, pos, tokens); Tensor cs = tensor(dev, ct, cache, maxPos, rot);
                                     Tensor qst = tensor(dev, t, qs, tokens, qHeads, head + pad); Tensor kst = tensor(dev, t, ks, tokens, kHeads, head + pad);
                                     Tensor qv = qst.asStrided(new long[] {tokens, qHeads, head}, new long[] {(long) qHeads * (head + pad), head + pad, 1}, 0);
                                     Tensor kv = kst.asStrided(new long[] {tokens, kHeads, head}, new long[] {(long) kHeads * (head + pad), head + pad, 1}, 0)) {
                                    D.call("_C::rotary_embedding", new Object[] {p, qv, kv, (long) head, cs, neox}, Map.of());
                                    String what = t + " cache " + ct + " positions " + pt + " head " + head + " rot " + rot + (neox ? " neox" : " gptj") + " on " + dev;
                                    assertArrayEquals(wantQ, values(qv), "query " + what);
                                    assertArrayEquals(wantK, values(kv), "key " + what);
                                    assertArrayEquals(padded(wantQ, tokens * qHeads, head, pad), values(qst), "query padding untouched " + what);
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    /**
     * SEMANTICS.md §4: positions [B, S] with query [B, S, heads * head_size] or [B, S, heads,
     * head_size] and key likewise: the same rotation as on the B * S tokens in order. A query whose
     * leading dimensions are not [B, S] is rejected before anything is written.
     */
    @Test
    void rotaryEmbeddingWithBatchedPositions() {
        SplittableRandom rnd = new SplittableRandom(40);
        int b = 2, sq = 3, tokens = b * sq, maxPos = 50, head = 32, rot = 16, qHeads = 2, kHeads = 1;
        double[] cache = stored(DType.BFLOAT16, cosSinCache(maxPos, rot));
        for (boolean neox : new boolean[] {true, false}) {
            for (boolean perHead : new boolean[] {true, false}) {
                double[] pos = new double[tokens];
                for (int i = 0; i < tokens; i++) pos[i] = rnd.nextInt(maxPos);
                double[] q = stored(DType.BFLOAT16, normal(rnd, tokens * qHeads * head)), k = stored(DType.BFLOAT16, normal(rnd, tokens * kHeads * head));
                double[] wantQ = rotaryReference(DType.BFLOAT16, q, pos, cache, qHeads, head, rot, neox);
                double[] wantK = rotaryReference(DType.BFLOAT16, k, pos, cache, kHeads, head, rot, neox);
                for (Device dev : DEVICES) {
                    long[] qShape = perHead ? new long[] {b, sq, qHeads, head} : new long[] {b, sq, (long) qHeads * head};
                    try (Tensor p = tensor(dev, DType.INT64, pos, b, sq); Tensor cs = tensor(dev, DType.BFLOAT16, cache, maxPos, rot);
                         Tensor qt = tensor(dev, DType.BFLOAT16, q, qShape); Tensor kt = tensor(dev, DType.BFLOAT16, k, b, sq, (long) kHeads * head)) {
                        D.call("_C::rotary_embedding", new Object[] {p, qt, kt, (long) head, cs, neox}, Map.of());
                        String what = (neox ? "neox" : "gptj") + (perHead ? " [B, S, H, D]" : " [B, S, H*D]") + " on " + dev;
                        assertArrayEquals(wantQ, values(qt), "query " + what);
                        assertArrayEquals(wantK, values(kt), "key " + what);
                    }
                    try (Tensor p = tensor(dev, DType.INT64, pos, b, sq); Tensor cs = tensor(dev, DType.BFLOAT16, cache, maxPos, rot);
                         Tensor qt = tensor(dev, DType.BFLOAT16, q, tokens, qHeads, head)) {
                        assertThrows(SipuException.class, () -> D.call("_C::rotary_embedding", new Object[] {p, qt, null, (long) head, cs, neox}, Map.of()),
                                "query [T, H, D] with positions [B, S] on " + dev);
                        assertArrayEquals(q, values(qt), "query untouched on " + dev);
                    }
                }
            }
        }
    }

    /** rows of width w spread to width w + pad, the padding holding 7. */
    private static double[] padded(double[] v, int rows, int w, int pad) {
        double[] r = new double[rows * (w + pad)];
        Arrays.fill(r, 7);
        for (int i = 0; i < rows; i++) System.arraycopy(v, i * w, r, i * (w + pad), w);
        return r;
    }

    // ---- concat_and_cache_mla ---------------------------------------------------------------

    /**
     * SEMANTICS.md §5: "fp8" and "fp8_e4m3" store sat_e4m3(x / scale) (values far beyond 448·scale
     * saturate), in a uint8 or a float8_e4m3fn cache; every negative slot is padding; only
     * slot_mapping.size(0) tokens are written; other slots keep their bytes.
     */
    @Test
    void concatAndCacheMlaFp8SaturatesAndSkipsNegativeSlots() {
        SplittableRandom rnd = new SplittableRandom(32);
        int tokens = 7, rank = 24, rope = 8, blocks = 3, blockSize = 4, width = rank + rope;
        double[] slots = {5, -1, 11, -7, 0, 2};   // 6 slots for 7 tokens: the last token is not written
        float scale = 0.01f;
        for (DType t : new DType[] {DType.FLOAT32, DType.BFLOAT16, DType.FLOAT16}) {
            double[] kvc = stored(t, normal(rnd, tokens * rank)), kpe = stored(t, normal(rnd, tokens * rope));
            kvc[3] = round(t, 50f);    // 5000 after the scale: saturates to 448
            kpe[1] = round(t, -9f);    // -900: -448
            for (String kind : new String[] {"fp8", "fp8_e4m3"}) {
                for (DType cacheType : new DType[] {DType.UINT8, DType.FLOAT8_E4M3FN}) {
                    double[] want = new double[blocks * blockSize * width];
                    Arrays.fill(want, 0x11);
                    for (int i = 0; i < slots.length; i++) {
                        if (slots[i] < 0) continue;
                        int at = (int) slots[i] * width;
                        for (int j = 0; j < rank; j++) want[at + j] = (byte) e4m3Sat((float) kvc[i * rank + j] / scale);
                        for (int j = 0; j < rope; j++) want[at + rank + j] = (byte) e4m3Sat((float) kpe[i * rope + j] / scale);
                    }
                    for (Device dev : DEVICES) {
                        double[] fill = new double[want.length];
                        Arrays.fill(fill, 0x11);
                        try (Tensor kv = tensor(dev, t, kvc, tokens, rank); Tensor pe = tensor(dev, t, kpe, tokens, rope);
                             Tensor cache8 = tensor(dev, DType.UINT8, fill, blocks, blockSize, width);
                             Tensor cache = cacheType == DType.UINT8 ? cache8 : cache8.viewAs(DType.FLOAT8_E4M3FN);
                             Tensor sm = tensor(dev, DType.INT64, slots, slots.length); Tensor sc = tensor(dev, DType.FLOAT32, new double[] {scale}, 1)) {
                            D.call("_C_cache_ops::concat_and_cache_mla", kv, pe, cache, sm, kind, sc);
                            assertArrayEquals(want, bitsOf(cache8), "concat_and_cache_mla " + t + " " + kind + " into " + cacheType + " on " + dev);
                        }
                    }
                }
            }
        }
    }

    // ---- per-token quantization -------------------------------------------------------------

    /**
     * OPS.md: scale = max(min(amax, scale_ub) / 448, 1/(448*512)), result = e4m3(clamp(x / scale,
     * ±448)): with scale_ub below the row's amax the large values saturate.
     */
    @Test
    void perTokenFp8WithScaleUbSaturates() {
        SplittableRandom rnd = new SplittableRandom(33);
        int tokens = 4, h = 37;
        for (DType t : new DType[] {DType.FLOAT32, DType.BFLOAT16, DType.FLOAT16}) {
            double[] x = stored(t, normal(rnd, tokens * h));
            for (int i = 0; i < h; i++) x[2 * h + i] = 0;   // a zero row: the minimum scale
            for (Double ub : new Double[] {null, 0.5, 100.0}) {
                double[] wantCodes = new double[tokens * h], wantScales = new double[tokens];
                for (int r = 0; r < tokens; r++) {
                    float amax = 0;
                    for (int i = 0; i < h; i++) amax = Math.max(amax, (float) Math.abs(x[r * h + i]));
                    if (ub != null) amax = Math.min(amax, ub.floatValue());
                    float s = Math.max(amax / 448f, 1f / (448f * 512f));
                    wantScales[r] = s;
                    for (int i = 0; i < h; i++) wantCodes[r * h + i] = (byte) e4m3Sat((float) x[r * h + i] / s);
                }
                for (Device dev : DEVICES) {
                    try (Tensor xt = tensor(dev, t, x, tokens, h); Tensor out = tensor(dev, DType.FLOAT8_E4M3FN, new double[tokens * h], tokens, h);
                         Tensor s = tensor(dev, DType.FLOAT32, new double[tokens], tokens, 1);
                         Tensor ubt = ub == null ? null : tensor(dev, DType.FLOAT32, new double[] {ub}, 1)) {
                        D.call("_C::dynamic_per_token_scaled_fp8_quant", new Object[] {out, xt, s, ubt}, Map.of());
                        String what = "per-token fp8 " + t + " scale_ub " + ub + " on " + dev;
                        assertArrayEquals(wantScales, values(s), what + ": scales");
                        assertArrayEquals(wantCodes, bitsOf(out), what + ": codes");
                    }
                }
            }
        }
    }

    /**
     * vLLM's per-token kernels take input [..., H] as numel / H tokens: a [2, 3, H] input whose rows
     * are spaced apart evenly, scale [2, 3, 1]. Leading dimensions that do not step evenly (a slice of
     * the middle dimension) are rejected before anything is written.
     */
    @Test
    void perTokenQuantizationOfThreeDimensionalInputs() {
        SplittableRandom rnd = new SplittableRandom(39);
        int b0 = 2, b1 = 3, h = 45, pad = 3, rows = b0 * b1;
        double[] x = stored(DType.BFLOAT16, normal(rnd, rows * (h + pad)));
        for (boolean int8 : new boolean[] {false, true}) {
            double[] wantCodes = new double[rows * h], wantScales = new double[rows];
            for (int r = 0; r < rows; r++) {
                float amax = 0;
                for (int i = 0; i < h; i++) amax = Math.max(amax, (float) Math.abs(x[r * (h + pad) + i]));
                float s = int8 ? amax / 127f : Math.max(amax / 448f, 1f / (448f * 512f));
                wantScales[r] = s;
                for (int i = 0; i < h; i++) {
                    float v = (float) x[r * (h + pad) + i] / s;
                    wantCodes[r * h + i] = int8 ? Math.max(-128, Math.min(127, Math.rint(v))) + 0.0 : (byte) e4m3Sat(v);
                }
            }
            String op = int8 ? "_C::dynamic_scaled_int8_quant" : "_C::dynamic_per_token_scaled_fp8_quant";
            DType rt = int8 ? DType.INT8 : DType.FLOAT8_E4M3FN;
            for (Device dev : DEVICES) {
                try (Tensor xs = tensor(dev, DType.BFLOAT16, x, b0, b1, h + pad);
                     Tensor xv = xs.asStrided(new long[] {b0, b1, h}, new long[] {(long) b1 * (h + pad), h + pad, 1}, 0);
                     Tensor out = tensor(dev, rt, new double[rows * h], b0, b1, h); Tensor s = tensor(dev, DType.FLOAT32, new double[rows], b0, b1, 1)) {
                    D.call(op, new Object[] {out, xv, s, null}, Map.of());
                    String what = op + " [2, 3, " + h + "] on " + dev;
                    assertArrayEquals(wantScales, values(s), what + ": scales");
                    assertArrayEquals(wantCodes, int8 ? values(out) : bitsOf(out), what + ": codes");
                }
                try (Tensor xs = tensor(dev, DType.BFLOAT16, normal(rnd, b0 * 4 * h), b0, 4, h);
                     Tensor xv = xs.asStrided(new long[] {b0, b1, h}, new long[] {4L * h, h, 1}, 0);
                     Tensor out = tensor(dev, rt, new double[rows * h], b0, b1, h); Tensor s = tensor(dev, DType.FLOAT32, new double[rows], b0, b1, 1)) {
                    assertThrows(SipuException.class, () -> D.call(op, new Object[] {out, xv, s, null}, Map.of()), "uneven rows on " + dev);
                    assertArrayEquals(new double[rows], values(s), "scales untouched on " + dev);
                }
            }
        }
    }

    /** OPS.md: int8 result = round-half-even(x / scale), scale = amax / 127: ties go to the even integer. */
    @Test
    void perTokenInt8RoundsHalfToEven() {
        // amax 127 gives scale 1 exactly, so x / scale is x: the .5 values are exact ties
        double[] x = {127, 0.5, 1.5, 2.5, -0.5, -1.5, -2.5, 3.25, -126.5, 126.5, 0, -127};
        double[] want = {127, 0, 2, 2, -0, -2, -2, 3, -126, 126, 0, -127};
        for (DType t : new DType[] {DType.FLOAT32, DType.BFLOAT16, DType.FLOAT16}) {
            for (Device dev : DEVICES) {
                try (Tensor xt = tensor(dev, t, x, 1, x.length); Tensor out = tensor(dev, DType.INT8, new double[x.length], 1, x.length);
                     Tensor s = tensor(dev, DType.FLOAT32, new double[1], 1, 1)) {
                    D.call("_C::dynamic_scaled_int8_quant", new Object[] {out, xt, s, null}, Map.of());
                    assertArrayEquals(new double[] {1}, values(s), "int8 scale " + t + " on " + dev);
                    assertArrayEquals(want, values(out), "int8 codes " + t + " on " + dev);
                }
            }
        }
    }

    // ---- act_quant --------------------------------------------------------------------------

    /**
     * OPS.md: amax clamped to >= 1e-4, s = amax / 448, "ue8m0" rounds s up to a power of two
     * (never below amax / 448), y = e4m3(x / s); block sizes other than 128; K % block_size != 0 is
     * rejected, as is an unknown scale_fmt.
     */
    @Test
    void actQuantScalesForEveryFormatAndBlockSize() {
        SplittableRandom rnd = new SplittableRandom(34);
        for (int block : new int[] {32, 64, 128}) {
            int rows = 3, k = 2 * block;
            double[] x = stored(DType.BFLOAT16, normal(rnd, rows * k));
            for (int i = 0; i < block; i++) x[block + i] = round(DType.BFLOAT16, (float) (x[block + i] * 1e-7));   // below the 1e-4 floor
            for (int i = 0; i < block; i++) x[2 * k + i] = round(DType.BFLOAT16, (float) (x[2 * k + i] * 300));   // large
            for (String fmt : new String[] {null, "ue8m0"}) {
                double[] wantS = new double[rows * 2], wantY = new double[rows * k];
                for (int b = 0; b < rows * 2; b++) {
                    float amax = 0;
                    for (int i = b * block; i < (b + 1) * block; i++) amax = Math.max(amax, (float) Math.abs(x[i]));
                    float s = Math.max(amax, 1e-4f) / 448f;
                    if (fmt != null) {
                        float p = Math.scalb(1f, Math.getExponent(s));   // the power of two at or below s
                        s = p == s ? p : 2 * p;
                    }
                    wantS[b] = s;
                    for (int i = b * block; i < (b + 1) * block; i++) wantY[i] = (byte) e4m3Sat((float) x[i] / s);
                }
                for (Device dev : DEVICES) {
                    try (Tensor xt = tensor(dev, DType.BFLOAT16, x, rows, k)) {
                        @SuppressWarnings("unchecked")
                        List<Tensor> r = (List<Tensor>) D.call("deepseek::act_quant", new Object[] {xt, (long) block, fmt}, Map.of());
                        try (Tensor y = r.get(0); Tensor s = r.get(1)) {
                            String what = "act_quant block " + block + " " + fmt + " on " + dev;
                            assertArrayEquals(new long[] {rows, 2}, s.sizes(), what);
                            assertArrayEquals(wantS, values(s), what + ": scales");
                            assertArrayEquals(wantY, bitsOf(y), what + ": codes");
                        }
                    }
                }
            }
        }
        for (Device dev : DEVICES) {
            try (Tensor xt = tensor(dev, DType.BFLOAT16, new double[2 * 96], 2, 96)) {
                assertThrows(SipuException.class, () -> D.call("deepseek::act_quant", new Object[] {xt, 64L, null}, Map.of()), "K % block on " + dev);
                assertThrows(SipuException.class, () -> D.call("deepseek::act_quant", new Object[] {xt, 32L, "e8m0"}, Map.of()), "scale_fmt on " + dev);
            }
        }
    }

    // ---- topk_softmax -----------------------------------------------------------------------

    /** SEMANTICS.md §8 with int64 topk_indices, bf16/fp16 gating (softmax in fp32) and topk = E. */
    @Test
    void topkSoftmaxWithInt64IdsAndNarrowGating() {
        SplittableRandom rnd = new SplittableRandom(35);
        int tokens = 5;
        for (DType gt : new DType[] {DType.BFLOAT16, DType.FLOAT16, DType.FLOAT32}) {
            for (int[] ek : new int[][] {{6, 6}, {16, 3}}) {
                int experts = ek[0], topk = ek[1];
                double[] g = stored(gt, normal(rnd, tokens * experts));
                for (Device dev : DEVICES) {
                    try (Tensor gs = tensor(dev, gt, g, tokens, experts); Tensor w = tensor(dev, DType.FLOAT32, new double[tokens * topk], tokens, topk);
                         Tensor ids = tensor(dev, DType.INT64, new double[tokens * topk], tokens, topk);
                         Tensor tei = tensor(dev, DType.INT32, new double[tokens * topk], tokens, topk)) {
                        D.call("_moe_C::topk_softmax", w, ids, tei, gs);
                        double[] wv = values(w), iv = values(ids), tv = values(tei);
                        for (int t = 0; t < tokens; t++) {
                            int[] order = new int[topk];
                            double[] weight = LlmCrossCheckTest.topkSoftmaxReference(g, t, experts, order);
                            for (int k = 0; k < topk; k++) {
                                String what = "topk_softmax " + gt + " E " + experts + " token " + t + " pick " + k + " on " + dev;
                                assertEquals(order[k], (int) iv[t * topk + k], what);
                                assertEquals(weight[k], wv[t * topk + k], 2e-6 * weight[k], what);
                                assertEquals(k * tokens + t, (int) tv[t * topk + k], what);
                            }
                        }
                    }
                }
            }
        }
    }

    /**
     * SEMANTICS.md §8 sketch (torch.softmax, then a stable descending sort in which NaN is largest):
     * a row with +inf, or with every logit -inf, has an all-NaN softmax, so it takes experts 0..K-1
     * with NaN weights; -inf logits in an otherwise finite row get weight 0 and are picked last.
     */
    @Test
    void topkSoftmaxOnNonFiniteRows() {
        int experts = 8, topk = 3, tokens = 3;
        double inf = Double.POSITIVE_INFINITY;
        double[] g = {0, 1, inf, 2, 0, 0, 3, 0,
                -inf, -inf, -inf, -inf, -inf, -inf, -inf, -inf,
                -inf, 0.5, -inf, -inf, -inf, -inf, -inf, 0.25};
        for (Device dev : DEVICES) {
            try (Tensor gs = tensor(dev, DType.FLOAT32, g, tokens, experts); Tensor w = tensor(dev, DType.FLOAT32, new double[tokens * topk], tokens, topk);
                 Tensor ids = tensor(dev, DType.INT32, new double[tokens * topk], tokens, topk);
                 Tensor tei = tensor(dev, DType.INT32, new double[tokens * topk], tokens, topk)) {
                D.call("_moe_C::topk_softmax", w, ids, tei, gs);
                double[] wv = values(w), iv = values(ids);
                for (int t = 0; t < 2; t++) {
                    for (int k = 0; k < topk; k++) {
                        assertEquals(k, (int) iv[t * topk + k], "all-NaN row " + t + " pick " + k + " on " + dev);
                        assertTrue(Double.isNaN(wv[t * topk + k]), "all-NaN row " + t + " weight " + k + " on " + dev);
                    }
                }
                double z = Math.exp(0) + Math.exp(-0.25);
                assertArrayEquals(new double[] {1, 7, 0}, Arrays.copyOfRange(iv, 6, 9), "row with -inf logits on " + dev);
                assertEquals(1 / z, wv[6], 1e-6, "on " + dev);
                assertEquals(Math.exp(-0.25) / z, wv[7], 1e-6, "on " + dev);
                assertEquals(0, wv[8], "a -inf logit's weight on " + dev);
            }
        }
    }

    // ---- fp8_gemm ---------------------------------------------------------------------------

    /** SEMANTICS.md §15: a [..., K] with a_s [..., K/128] gives out [..., N] bf16. */
    @Test
    void fp8GemmWithLeadingDimensions() {
        SplittableRandom rnd = new SplittableRandom(37);
        int b0 = 2, b1 = 3, k = 256, n = 5, kb = 2;
        double[] a = new double[b0 * b1 * k], bw = new double[n * k], as = new double[b0 * b1 * kb], bs = new double[kb];
        for (int i = 0; i < a.length; i++) a[i] = e4m3Value(rnd.nextInt(16, 60)) * (rnd.nextBoolean() ? 1 : -1);   // small magnitudes: exact sums
        for (int i = 0; i < bw.length; i++) bw[i] = e4m3Value(rnd.nextInt(16, 60)) * (rnd.nextBoolean() ? 1 : -1);
        for (int i = 0; i < as.length; i++) as[i] = Math.scalb(1.0, -rnd.nextInt(4));
        for (int i = 0; i < bs.length; i++) bs[i] = Math.scalb(1.0, -rnd.nextInt(4));
        double[] want = new double[b0 * b1 * n];
        for (int m = 0; m < b0 * b1; m++) {
            for (int j = 0; j < n; j++) {
                double acc = 0;
                for (int q = 0; q < kb; q++) {
                    double part = 0;
                    for (int p = q * 128; p < (q + 1) * 128; p++) part += a[m * k + p] * bw[j * k + p];
                    acc += part * as[m * kb + q] * bs[q];
                }
                want[m * n + j] = round(DType.BFLOAT16, (float) acc);
            }
        }
        for (Device dev : DEVICES) {
            try (Tensor at = tensor(dev, DType.FLOAT8_E4M3FN, a, b0, b1, k); Tensor ast = tensor(dev, DType.FLOAT32, as, b0, b1, kb);
                 Tensor bt = tensor(dev, DType.FLOAT8_E4M3FN, bw, n, k); Tensor bst = tensor(dev, DType.FLOAT32, bs, 1, kb);
                 Tensor out = (Tensor) D.call("deepseek::fp8_gemm", at, ast, bt, bst)) {
                assertArrayEquals(new long[] {b0, b1, n}, out.sizes(), "on " + dev);
                assertEquals(DType.BFLOAT16, out.dtype());
                assertArrayEquals(want, values(out), "fp8_gemm [2, 3, 256] x [5, 256] on " + dev);
            }
        }
    }

    // ---- weight_dequant ---------------------------------------------------------------------

    /** SEMANTICS.md §14 with block_size 64 and partial edge blocks: bf16(x * s[i/64, j/64]). */
    @Test
    void weightDequantWithOtherBlockSizes() {
        SplittableRandom rnd = new SplittableRandom(36);
        int m = 70, n = 129, block = 64, sm = 2, sn = 3;
        double[] w = new double[m * n];
        for (int i = 0; i < w.length; i++) {
            int c = rnd.nextInt(256);
            if ((c & 0x7F) == 0x7F) c &= 0xFE;   // not NaN
            w[i] = ((c & 0x80) != 0 ? -1 : 1) * e4m3Value(c & 0x7F);
        }
        double[] s = new double[sm * sn];
        for (int i = 0; i < s.length; i++) s[i] = (float) (0.5 + rnd.nextDouble());
        double[] want = new double[m * n];
        for (int i = 0; i < m; i++) for (int j = 0; j < n; j++) want[i * n + j] = round(DType.BFLOAT16, (float) w[i * n + j] * (float) s[i / block * sn + j / block]);
        for (Device dev : DEVICES) {
            try (Tensor wt = tensor(dev, DType.FLOAT8_E4M3FN, w, m, n); Tensor st = tensor(dev, DType.FLOAT32, s, sm, sn);
                 Tensor y = (Tensor) D.call("deepseek::weight_dequant", wt, st, (long) block)) {
                assertEquals(DType.BFLOAT16, y.dtype());
                assertArrayEquals(want, values(y), "weight_dequant block 64 on " + dev);
            }
        }
    }

    static {
        assertTrue(e4m3Value(126) == 448 && e4m3Value(1) == 0x1p-9 && e4m3Value(8) == 0x1p-6);
    }
}
