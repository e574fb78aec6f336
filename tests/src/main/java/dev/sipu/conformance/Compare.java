package dev.sipu.conformance;

import dev.sipu.api.Conversions;
import dev.sipu.api.DType;
import dev.sipu.api.Elements;
import dev.sipu.api.Shapes;
import dev.sipu.api.Tensor;

import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * The comparison modes of FORMAT.md, on host tensors. Each check returns null when it holds, else a
 * message naming the first place it fails.
 */
final class Compare {
    private Compare() {}

    /** The comparison modes FORMAT.md defines; a case asking for another is not run. */
    static final Set<String> MODES = Set.of("close", "exact", "meta", "meta_strides", "sort", "topk",
            "topk_routing", "moe_align", "fp8_quant", "fp8_bytes", "exponential");

    /** FORMAT.md's default tolerances by dtype (PyTorch's assert_close defaults for the others). */
    static Case.Tolerance defaults(DType d) {
        return switch (d) {
            case FLOAT32 -> new Case.Tolerance(1.3e-6, 1e-5);
            case FLOAT16 -> new Case.Tolerance(1e-3, 1e-5);
            case BFLOAT16 -> new Case.Tolerance(1.6e-2, 1e-5);
            case FLOAT64 -> new Case.Tolerance(1e-7, 1e-7);
            case FLOAT8_E4M3FN, FLOAT8_E5M2 -> new Case.Tolerance(0.125, 1e-3);
            default -> new Case.Tolerance(0, 0);
        };
    }

    static String metadata(String what, Tensor actual, Tensor expected) {
        if (!Arrays.equals(actual.sizes(), expected.sizes())) {
            return what + ": shape " + Shapes.str(actual.sizes()) + ", expected " + Shapes.str(expected.sizes());
        }
        if (actual.dtype() != expected.dtype()) return what + ": dtype " + actual.dtype() + ", expected " + expected.dtype();
        return null;
    }

    static String strides(String what, Tensor actual, Tensor expected, long[] es) {
        String m = metadata(what, actual, expected);
        if (m != null) return m;
        long[] as = actual.strides();
        for (int i = 0; i < as.length; i++) {
            if (actual.size(i) > 1 && as[i] != es[i]) {
                return what + ": strides " + Arrays.toString(as) + ", expected " + Arrays.toString(es);
            }
        }
        return null;
    }

    /** {@code close}: |a - e| <= atol + rtol |e| for floats, NaN where expected, equal infinities; integers exact. */
    static String close(String what, Tensor actual, Tensor expected, Case.Tolerance tol) {
        String m = metadata(what, actual, expected);
        if (m != null) return m;
        Case.Tolerance t = tol != null ? tol.or(defaults(expected.dtype())) : defaults(expected.dtype());
        return values(what, actual, expected, t, false);
    }

    /** {@code exact}: identical values, NaN matching NaN. */
    static String exact(String what, Tensor actual, Tensor expected) {
        String m = metadata(what, actual, expected);
        if (m != null) return m;
        return values(what, actual, expected, new Case.Tolerance(0, 0), true);
    }

    private static String values(String what, Tensor actual, Tensor expected, Case.Tolerance t, boolean exact) {
        boolean floating = expected.dtype().isFloatingPoint();
        long n = expected.numel();
        for (long i = 0; i < n; i++) {
            if (floating) {
                double a = Elements.getDouble(actual, i), e = Elements.getDouble(expected, i);
                if (!closeValue(a, e, t, exact)) return mismatch(what, expected, i, a, e, t);
            } else {
                long a = Elements.getLong(actual, i), e = Elements.getLong(expected, i);
                if (a != e) return what + ": at " + index(expected, i) + " got " + a + ", expected " + e;
            }
        }
        return null;
    }

    static boolean closeValue(double a, double e, Case.Tolerance t, boolean exact) {
        if (Double.isNaN(e) || Double.isNaN(a)) return Double.isNaN(e) && Double.isNaN(a);
        if (Double.isInfinite(e) || Double.isInfinite(a)) return a == e;
        if (exact) return a == e;
        return Math.abs(a - e) <= t.atol() + t.rtol() * Math.abs(e);
    }

    private static String mismatch(String what, Tensor expected, long i, double a, double e, Case.Tolerance t) {
        return what + ": at " + index(expected, i) + " got " + a + ", expected " + e + " (rtol " + t.rtol() + ", atol " + t.atol() + ")";
    }

    static String index(Tensor t, long flat) {
        long[] s = t.sizes();
        long[] idx = new long[s.length];
        for (int d = s.length - 1; d >= 0; d--) {
            idx[d] = flat % s[d];
            flat /= s[d];
        }
        return Arrays.toString(idx);
    }

    /**
     * {@code sort}/{@code topk}: values close to the expected values; indices point at those values:
     * input[..., indices[i], ...] along {@code dim} equals values[i].
     */
    static String indexedValues(String what, Tensor values, Tensor indices, Tensor expValues, Tensor expIndices,
                                Tensor input, int dim, Case.Tolerance tol) {
        String m = close(what + "[values]", values, expValues, tol);
        if (m != null) return m;
        m = metadata(what + "[indices]", indices, expIndices);
        if (m != null) return m;
        long[] s = indices.sizes();
        long[] in = input.sizes();
        for (long i = 0; i < indices.numel(); i++) {
            long k = Elements.getLong(indices, i);
            long size = in.length == 0 ? 1 : in[dim];
            if (k < 0 || k >= size) return what + "[indices]: at " + index(indices, i) + " index " + k + " out of range";
            long src = 0, rem = i, mul = 1;
            long[] idx = new long[s.length];
            for (int d = s.length - 1; d >= 0; d--) {
                idx[d] = rem % s[d];
                rem /= s[d];
            }
            if (idx.length > 0) idx[dim] = k;
            for (int d = in.length - 1; d >= 0; d--) {
                src += idx[d] * mul;
                mul *= in[d];
            }
            double gathered = Elements.getDouble(input, src), v = Elements.getDouble(values, i);
            if (!(gathered == v || Double.isNaN(gathered) && Double.isNaN(v))) {
                return what + "[indices]: at " + index(indices, i) + " index " + k + " points at " + gathered + " but the value is " + v;
            }
        }
        return null;
    }

    /**
     * {@code topk_routing}: per token (row), the same set of expert ids, and each id's weight close to
     * the expected weight of that id; the order inside a row is free.
     */
    static String routing(String what, Tensor weights, Tensor ids, Tensor expWeights, Tensor expIds, Case.Tolerance tol) {
        String m = metadata(what + "[ids]", ids, expIds);
        if (m == null) m = metadata(what + "[weights]", weights, expWeights);
        if (m != null) return m;
        Case.Tolerance t = tol != null ? tol.or(defaults(expWeights.dtype())) : defaults(expWeights.dtype());
        long rows = ids.dim() == 0 ? 1 : ids.size(0);
        long k = rows == 0 ? 0 : ids.numel() / rows;
        for (long r = 0; r < rows; r++) {
            Map<Long, Double> expected = new HashMap<>();
            for (long j = 0; j < k; j++) expected.put(Elements.getLong(expIds, r * k + j), Elements.getDouble(expWeights, r * k + j));
            for (long j = 0; j < k; j++) {
                long id = Elements.getLong(ids, r * k + j);
                Double ew = expected.remove(id);
                if (ew == null) return what + ": token " + r + " chose expert " + id + ", expected the set " + rowSet(expIds, r, k);
                double w = Elements.getDouble(weights, r * k + j);
                if (!closeValue(w, ew, t, false)) return what + ": token " + r + " expert " + id + " weight " + w + ", expected " + ew;
            }
        }
        return null;
    }

    private static String rowSet(Tensor ids, long r, long k) {
        long[] out = new long[(int) k];
        for (int j = 0; j < k; j++) out[j] = Elements.getLong(ids, r * k + j);
        Arrays.sort(out);
        return Arrays.toString(out);
    }

    /**
     * {@code moe_align}: num_tokens_post_pad exact; expert ids exact over the used blocks; each expert's
     * segment of sorted_token_ids holds the expected multiset.
     */
    static String moeAlign(Tensor sorted, Tensor experts, Tensor post, Tensor expSorted, Tensor expExperts, Tensor expPost,
                           long blockSize) {
        String m = exact("num_tokens_post_pad", post, expPost);
        if (m != null) return m;
        long total = Elements.getLong(expPost, 0);
        if (blockSize <= 0) return "block_size " + blockSize;
        long blocks = total / blockSize;
        if (experts.numel() < blocks || sorted.numel() < total) return "outputs shorter than num_tokens_post_pad " + total;
        for (long b = 0; b < blocks; b++) {
            if (Elements.getLong(experts, b) != Elements.getLong(expExperts, b)) {
                return "experts_ids: block " + b + " got " + Elements.getLong(experts, b) + ", expected " + Elements.getLong(expExperts, b);
            }
        }
        long start = 0;
        while (start < blocks) {
            long e = Elements.getLong(expExperts, start), end = start;
            while (end < blocks && Elements.getLong(expExperts, end) == e) end++;
            long[] a = segment(sorted, start * blockSize, end * blockSize), x = segment(expSorted, start * blockSize, end * blockSize);
            if (!Arrays.equals(a, x)) {
                return "sorted_token_ids: expert " + e + " segment holds " + Arrays.toString(a) + ", expected " + Arrays.toString(x);
            }
            start = end;
        }
        return null;
    }

    private static long[] segment(Tensor t, long from, long to) {
        long[] out = new long[(int) (to - from)];
        for (int i = 0; i < out.length; i++) out[i] = Elements.getLong(t, from + i);
        Arrays.sort(out);
        return out;
    }

    /**
     * {@code fp8_quant}: e4m3 tensors decode to equal values or adjacent codes (one rounding step);
     * other tensors (scales) are close with rtol 1e-5. {@code bytes}: uint8 tensors hold e4m3 codes.
     */
    static String fp8(String what, Tensor actual, Tensor expected, boolean bytes, Case.Tolerance tol) {
        boolean codes = expected.dtype() == DType.FLOAT8_E4M3FN || (bytes && expected.dtype() == DType.UINT8);
        if (!codes) {
            double atol = tol != null && !Double.isNaN(tol.atol()) ? tol.atol() : 0;
            return close(what, actual, expected, new Case.Tolerance(1e-5, Math.min(atol, 1e-6)));
        }
        String m = metadata(what, actual, expected);
        if (m != null) return m;
        try (Tensor ab = actual.viewAs(DType.UINT8); Tensor eb = expected.viewAs(DType.UINT8)) {
            return codes(what, ab, eb);
        }
    }

    private static String codes(String what, Tensor actual, Tensor expected) {
        for (long i = 0; i < expected.numel(); i++) {
            int a = (int) Elements.getLong(actual, i) & 0xFF;
            int e = (int) Elements.getLong(expected, i) & 0xFF;
            if (a == e) continue;
            float fa = Conversions.e4m3ToFloat((byte) a), fe = Conversions.e4m3ToFloat((byte) e);
            if (Float.isNaN(fa) && Float.isNaN(fe)) continue;   // NaN decodes as NaN whatever its sign bit
            if (Float.isNaN(fa) || Float.isNaN(fe) || Math.abs(rank(a) - rank(e)) > 1) {
                return what + ": at " + index(expected, i) + " e4m3 " + fa + " (0x" + Integer.toHexString(a) + "), expected "
                        + fe + " (0x" + Integer.toHexString(e) + ")";
            }
        }
        return null;
    }

    /** Position of an e4m3 code on the number line (codes are monotonic in magnitude). */
    private static int rank(int code) {
        int mag = code & 0x7F;
        return (code & 0x80) != 0 ? -mag : mag;
    }

    /** {@code exponential}: finite, non-negative, mean within 5% of 1/lambda. */
    static String exponential(String what, Tensor actual, double lambda) {
        double sum = 0;
        long n = actual.numel();
        for (long i = 0; i < n; i++) {
            double v = Elements.getDouble(actual, i);
            if (!Double.isFinite(v) || v < 0) return what + ": at " + index(actual, i) + " sample " + v + " is not finite and >= 0";
            sum += v;
        }
        double mean = n == 0 ? 0 : sum / n, want = 1 / lambda;
        if (Math.abs(mean - want) > 0.05 * want) return what + ": mean " + mean + ", expected within 5% of " + want;
        return null;
    }

    static List<?> asList(Object o) { return o instanceof List<?> l ? l : null; }
}
