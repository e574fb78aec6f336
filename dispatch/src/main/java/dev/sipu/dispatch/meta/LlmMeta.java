package dev.sipu.dispatch.meta;

import dev.sipu.api.DType;
import dev.sipu.api.OpNotImplementedException;
import dev.sipu.api.Tensor;
import dev.sipu.dispatch.Call;

import java.util.Arrays;

/**
 * Checks of the vLLM, DeepSeek and MoE ops of OPS.md (shapes, dtypes, layouts), shared by every
 * device. Index-like values (positions, slots, expert ids) are checked by the kernels themselves in a
 * pass before their first store, since reading them is the kernel's job.
 */
public final class LlmMeta {
    private LlmMeta() {}

    static boolean float16or32(Tensor t) {
        return t.dtype() == DType.FLOAT32 || t.dtype() == DType.BFLOAT16 || t.dtype() == DType.FLOAT16;
    }

    private static void floatArg(Call c, int i) {
        if (!float16or32(c.tensor(i))) throw c.error(i, "dtype " + c.tensor(i).dtype() + " is not supported (float32, float16, bfloat16)");
    }

    private static void contiguous(Call c, int i) {
        if (!c.tensor(i).isContiguous()) throw c.error(i, "must be contiguous");
    }

    private static void shape(Call c, int i, long... expected) {
        if (!Arrays.equals(c.tensor(i).sizes(), expected)) {
            throw c.error(i, "expected shape " + Arrays.toString(expected) + ", got " + Arrays.toString(c.tensor(i).sizes()));
        }
    }

    private static void dtype(Call c, int i, DType... allowed) {
        DType d = c.tensor(i).dtype();
        for (DType a : allowed) if (a == d) return;
        throw c.error(i, "dtype " + d + " is not supported (" + Arrays.toString(allowed) + ")");
    }

    private static void integral(Call c, int i) {
        if (!c.tensor(i).dtype().isIntegral()) throw c.error(i, "must be an integer tensor, got " + c.tensor(i).dtype());
    }

    /** {@code fused_add_rms_norm(input!, residual!, weight, eps)}: returns H. */
    public static long fusedAddRmsNorm(Call c) {
        Tensor x = c.tensor(0), r = c.tensor(1), w = c.tensor(2);
        if (x.dim() == 0) throw c.error(0, "must have at least one dimension");
        floatArg(c, 0);
        long h = x.size(-1);
        if (x.stride(-1) != 1 && h > 1) throw c.error(0, "last dimension must be contiguous");
        NormMeta.sameShape(c, 1, r, x);
        contiguous(c, 1);
        shape(c, 2, h);
        if (w.dtype() != x.dtype()) throw c.error(2, "dtype " + w.dtype() + " differs from input's " + x.dtype());
        contiguous(c, 2);
        return h;
    }

    /**
     * The operands of a rotary embedding with the tokens in one dimension: positions [T], query and
     * key [T, heads * head_size] or [T, heads, head_size] (key null when None). For positions [B, S]
     * (SEMANTICS.md §4: query and key then lead with [B, S]) these are views merging B and S, which
     * {@link #close()} releases; otherwise the arguments themselves.
     */
    public record Rotary(Tensor positions, Tensor query, Tensor key, boolean views) implements AutoCloseable {
        @Override
        public void close() {
            if (!views) return;
            positions.close();
            query.close();
            if (key != null) key.close();
        }
    }

    /** {@code rotary_embedding(positions, query!, key!?, head_size, cos_sin_cache, is_neox)}. */
    public static Rotary rotary(Call c) {
        Tensor pos = c.tensor(0), q = c.tensor(1), k = c.optTensor(2), cache = c.tensor(4);
        long headSize = c.i64(3);
        if (pos.dim() != 1 && pos.dim() != 2) throw c.error(0, "must be [num_tokens] or [batch, seq], got " + Arrays.toString(pos.sizes()));
        integral(c, 0);
        if (headSize <= 0) throw c.error(3, "must be positive, got " + headSize);
        if (cache.dim() != 2 || cache.size(1) % 2 != 0 || !cache.dtype().isFloatingPoint()) {
            throw c.error(4, "must be a float [max_position, rot_dim] with an even rot_dim, got " + cache.dtype() + Arrays.toString(cache.sizes()));
        }
        if (cache.size(1) > headSize) throw c.error(4, "rot_dim " + cache.size(1) + " exceeds head_size " + headSize);
        if (pos.dim() == 2) {
            long b = pos.size(0), s = pos.size(1);
            merged(c, 1, q, b, s);
            if (k != null) merged(c, 2, k, b, s);
            if (b > 1 && s > 1 && pos.stride(0) != pos.stride(1) * s) throw c.error(0, "its rows must be evenly spaced");
        }
        Tensor pv = null, qv = null, kv = null;
        try {
            if (pos.dim() == 2) {
                pv = pos.asStrided(new long[] {pos.size(0) * pos.size(1)}, new long[] {pos.size(1) == 1 ? pos.stride(0) : pos.stride(1)}, pos.offset());
                qv = tokensFirst(q);
                kv = k == null ? null : tokensFirst(k);
            }
            Tensor p1 = pv != null ? pv : pos, q1 = qv != null ? qv : q, k1 = kv != null ? kv : k;
            qk(c, 1, q1, p1.size(0), headSize);
            if (k1 != null) {
                qk(c, 2, k1, p1.size(0), headSize);
                if (k1.dtype() != q1.dtype()) throw c.error(2, "dtype " + k1.dtype() + " differs from query's " + q1.dtype());
            }
            return new Rotary(p1, q1, k1, pv != null);
        } catch (RuntimeException e) {
            for (Tensor t : new Tensor[] {pv, qv, kv}) if (t != null) t.close();
            throw e;
        }
    }

    /** Query or key leading with [b, s] whose two dimensions merge into one token dimension. */
    private static void merged(Call c, int i, Tensor x, long b, long s) {
        if ((x.dim() != 3 && x.dim() != 4) || x.size(0) != b || x.size(1) != s) {
            throw c.error(i, "must be [" + b + ", " + s + ", heads * head_size] or [" + b + ", " + s + ", heads, head_size] for positions ["
                    + b + ", " + s + "], got " + Arrays.toString(x.sizes()));
        }
        if (b > 1 && s > 1 && x.stride(0) != x.stride(1) * s) throw c.error(i, "its batch and sequence dimensions must step evenly");
    }

    /** [b, s, ...] as [b * s, ...]. */
    private static Tensor tokensFirst(Tensor x) {
        long[] sizes = new long[x.dim() - 1], strides = new long[x.dim() - 1];
        sizes[0] = x.size(0) * x.size(1);
        strides[0] = x.size(1) == 1 ? x.stride(0) : x.stride(1);
        for (int d = 2; d < x.dim(); d++) {
            sizes[d - 1] = x.size(d);
            strides[d - 1] = x.stride(d);
        }
        return x.asStrided(sizes, strides, x.offset());
    }

    private static void qk(Call c, int i, Tensor x, long tokens, long headSize) {
        floatArg(c, i);
        if ((x.dim() != 2 && x.dim() != 3) || x.size(0) != tokens) {
            throw c.error(i, "must be [" + tokens + ", heads * head_size] or [" + tokens + ", heads, head_size], got " + Arrays.toString(x.sizes()));
        }
        long last = x.size(-1);
        if (x.dim() == 3 ? last != headSize : last % headSize != 0) {
            throw c.error(i, "last dimension " + last + " does not fit head_size " + headSize);
        }
        if (x.stride(-1) != 1 && last > 1) throw c.error(i, "last dimension must be contiguous");
    }

    /**
     * The rows of a per-token quantization: input and result [..., H] seen as [rows, H], each with one
     * row stride (their leading dimensions step evenly).
     */
    public record PerToken(long rows, long h, long inputRowStride, long resultRowStride) {}

    /**
     * {@code dynamic_per_token_scaled_fp8_quant(result!, input, scale!, scale_ub?)} and the int8 form
     * {@code dynamic_scaled_int8_quant(result!, input, scale!, azp?)}, symmetric only (no azp). As
     * vLLM's kernels, input [..., H] holds numel / H tokens (OPS.md: "per row"); scale holds one
     * value per token.
     */
    public static PerToken perTokenQuant(Call c, DType result) {
        Tensor out = c.tensor(0), x = c.tensor(1), s = c.tensor(2);
        if (x.dim() == 0) throw c.error(1, "must be [..., hidden], got a 0-d tensor");
        floatArg(c, 1);
        if (x.stride(-1) != 1 && x.size(-1) > 1) throw c.error(1, "last dimension must be contiguous");
        shape(c, 0, x.sizes());
        dtype(c, 0, result);
        if (out.stride(-1) != 1 && out.size(-1) > 1) throw c.error(0, "last dimension must be contiguous");
        long rows = NormMeta.rows(x), h = x.size(-1);
        long xs = rowStride(c, 1, x), os = rowStride(c, 0, out);
        dtype(c, 2, DType.FLOAT32);
        if (s.numel() != rows) throw c.error(2, "must hold one scale per token (" + rows + "), got " + Arrays.toString(s.sizes()));
        contiguous(c, 2);
        Tensor ub = c.optTensor(3);
        if (result == DType.INT8) {
            // a valid input this library has no kernel for: "not implemented", not a wrong argument
            if (ub != null) throw new OpNotImplementedException(c.op(), "with azp (asymmetric quantization); pass azp=None");
        } else if (ub != null && ub.numel() != 1) {
            throw c.error(3, "must hold one value");
        }
        return new PerToken(rows, h, xs, os);
    }

    /** The one stride between consecutive rows of a [..., H] tensor whose leading dimensions step evenly. */
    private static long rowStride(Call c, int i, Tensor t) {
        long stride = -1, next = 0;
        for (int d = t.dim() - 2; d >= 0; d--) {
            if (t.size(d) == 1) continue;
            if (stride < 0) stride = t.stride(d);
            else if (t.stride(d) != next) throw c.error(i, "its rows must be evenly spaced (leading strides " + Arrays.toString(t.strides()) + ")");
            next = t.stride(d) * t.size(d);
        }
        return stride < 0 ? t.size(-1) : stride;
    }

    /** {@code act_quant(x, block_size, scale_fmt)}: returns [rows, K] and the output shapes. */
    public record ActQuant(long rows, long k, long[] yShape, long[] sShape) {}

    public static ActQuant actQuant(Call c) {
        Tensor x = c.tensor(0);
        long block = c.i64(1);
        String fmt = c.str(2);
        if (x.dim() == 0) throw c.error(0, "must have at least one dimension");
        floatArg(c, 0);
        contiguous(c, 0);
        if (block <= 0) throw c.error(1, "must be positive, got " + block);
        long k = x.size(-1);
        if (k % block != 0) throw c.error(0, "last dimension " + k + " is not a multiple of block_size " + block);
        if (fmt != null && !fmt.equals("ue8m0")) throw c.error(2, "unknown scale format '" + fmt + "' (None or 'ue8m0')");
        long[] s = x.sizes();
        s[s.length - 1] = k / block;
        return new ActQuant(NormMeta.rows(x), k, x.sizes(), s);
    }

    /** {@code weight_dequant(x, s, block_size)}. */
    public static void weightDequant(Call c) {
        Tensor x = c.tensor(0), s = c.tensor(1);
        long block = c.i64(2);
        if (block <= 0) throw c.error(2, "must be positive, got " + block);
        if (x.dim() != 2) throw c.error(0, "must be 2-D, got " + Arrays.toString(x.sizes()));
        dtype(c, 0, DType.FLOAT8_E4M3FN);
        dtype(c, 1, DType.FLOAT32);
        shape(c, 1, Math.ceilDiv(x.size(0), block), Math.ceilDiv(x.size(1), block));
    }

    /** {@code fp8_gemm(a, a_s, b, b_s)}: returns M, K, N and the output shape [..., N]. */
    public record Fp8Gemm(long m, long k, long n, long[] outShape) {}

    public static Fp8Gemm fp8Gemm(Call c) {
        Tensor a = c.tensor(0), as = c.tensor(1), b = c.tensor(2), bs = c.tensor(3);
        dtype(c, 0, DType.FLOAT8_E4M3FN);
        dtype(c, 2, DType.FLOAT8_E4M3FN);
        dtype(c, 1, DType.FLOAT32);
        dtype(c, 3, DType.FLOAT32);
        if (a.dim() == 0) throw c.error(0, "must have at least one dimension");
        if (b.dim() != 2) throw c.error(2, "must be [N, K], got " + Arrays.toString(b.sizes()));
        for (int i = 0; i < 4; i++) contiguous(c, i);
        long k = a.size(-1), n = b.size(0);
        if (b.size(1) != k) throw c.error(2, "K differs: a has " + k + ", b has " + b.size(1));
        long kb = Math.ceilDiv(k, 128);
        long[] asShape = a.sizes();
        asShape[asShape.length - 1] = kb;
        shape(c, 1, asShape);
        shape(c, 3, Math.ceilDiv(n, 128), kb);
        long[] out = a.sizes();
        out[out.length - 1] = n;
        return new Fp8Gemm(NormMeta.rows(a), k, n, out);
    }

    /** {@code moe_sum(input [M, K, H], output! [M, H])}. */
    public static void moeSum(Call c) {
        Tensor in = c.tensor(0);
        if (in.dim() != 3) throw c.error(0, "must be [tokens, topk, hidden], got " + Arrays.toString(in.sizes()));
        floatArg(c, 0);
        contiguous(c, 0);
        shape(c, 1, in.size(0), in.size(2));
        if (c.tensor(1).dtype() != in.dtype()) throw c.error(1, "dtype differs from input's " + in.dtype());
        contiguous(c, 1);
    }

    /** {@code topk_softmax(topk_weights!, topk_indices!, token_expert_indices!, gating_output)}. */
    public static void topkSoftmax(Call c) {
        Tensor g = c.tensor(3), w = c.tensor(0);
        if (g.dim() != 2) throw c.error(3, "must be [tokens, experts], got " + Arrays.toString(g.sizes()));
        floatArg(c, 3);
        contiguous(c, 3);
        if (w.dim() != 2 || w.size(0) != g.size(0) || w.size(1) > g.size(1) || w.size(1) == 0 && g.size(0) > 0) {
            throw c.error(0, "must be [" + g.size(0) + ", k] with 0 < k <= " + g.size(1) + ", got " + Arrays.toString(w.sizes()));
        }
        dtype(c, 0, DType.FLOAT32);
        for (int i = 1; i <= 2; i++) {
            shape(c, i, w.sizes());
            integral(c, i);
        }
        for (int i = 0; i < 3; i++) contiguous(c, i);
    }

    /** {@code grouped_topk(scores, n_group, topk_group, topk, renormalize, rsf, bias, scoring_func)}: returns [T, topk]. */
    public static long[] groupedTopk(Call c) {
        Tensor s = c.tensor(0), bias = c.tensor(6);
        if (s.dim() != 2) throw c.error(0, "must be [tokens, experts], got " + Arrays.toString(s.sizes()));
        floatArg(c, 0);
        contiguous(c, 0);
        long e = s.size(1), groups = c.i64(1), topkGroup = c.i64(2), topk = c.i64(3);
        if (groups <= 0 || e % groups != 0) throw c.error(1, "the number of experts " + e + " must be a multiple of n_group " + groups);
        if (topkGroup <= 0 || topkGroup > groups) throw c.error(2, "must be in [1, " + groups + "], got " + topkGroup);
        if (topk <= 0 || topk > topkGroup * (e / groups)) {
            throw c.error(3, "must be in [1, " + topkGroup * (e / groups) + "] (experts in the kept groups), got " + topk);
        }
        if (bias.dim() != 1 || bias.size(0) != e || !bias.dtype().isFloatingPoint()) {
            throw c.error(6, "must be a float [" + e + "], got " + bias.dtype() + Arrays.toString(bias.sizes()));
        }
        long f = c.i64(7);
        if (f != 0 && f != 1) throw c.error(7, "must be 0 (none) or 1 (sigmoid), got " + f);
        return new long[] {s.size(0), topk};
    }

    /** {@code moe_align_block_size(topk_ids, num_experts, block_size, sorted_token_ids!, experts_ids!, num_tokens_post_pad!)}. */
    public static void moeAlign(Call c) {
        integral(c, 0);
        contiguous(c, 0);
        if (c.i64(1) <= 0) throw c.error(1, "must be positive, got " + c.i64(1));
        if (c.i64(2) <= 0) throw c.error(2, "must be positive, got " + c.i64(2));
        for (int i = 3; i <= 5; i++) {
            dtype(c, i, DType.INT32);
            contiguous(c, i);
            if (c.tensor(i).dim() != 1) throw c.error(i, "must be 1-D, got " + Arrays.toString(c.tensor(i).sizes()));
        }
        if (c.tensor(5).numel() < 1) throw c.error(5, "must hold one element");
    }

    /** {@code concat_and_cache_mla(kv_c, k_pe, kv_cache!, slot_mapping, kv_cache_dtype, scale)}: true for fp8. */
    public static boolean concatAndCacheMla(Call c) {
        Tensor kv = c.tensor(0), pe = c.tensor(1), cache = c.tensor(2), slots = c.tensor(3);
        String kind = c.str(4);
        boolean fp8 = switch (kind) {
            case "auto" -> false;
            case "fp8", "fp8_e4m3" -> true;
            case "fp8_e5m2", "fp8_ds_mla" -> throw new OpNotImplementedException(c.op(), "for kv_cache_dtype '" + kind + "' (auto, fp8, fp8_e4m3 are)");
            default -> throw c.error(4, "unsupported kv_cache_dtype '" + kind + "' (auto, fp8, fp8_e4m3)");
        };
        if (kv.dim() != 2) throw c.error(0, "must be [tokens, kv_lora_rank], got " + Arrays.toString(kv.sizes()));
        if (pe.dim() != 2) throw c.error(1, "must be [tokens, rope_dim], got " + Arrays.toString(pe.sizes()));
        floatArg(c, 0);
        if (pe.dtype() != kv.dtype()) throw c.error(1, "dtype " + pe.dtype() + " differs from kv_c's " + kv.dtype());
        if (slots.dim() != 1) throw c.error(3, "must be 1-D, got " + Arrays.toString(slots.sizes()));
        integral(c, 3);
        if (slots.size(0) > kv.size(0) || slots.size(0) > pe.size(0)) {
            throw c.error(3, "has " + slots.size(0) + " slots for " + Math.min(kv.size(0), pe.size(0)) + " tokens");
        }
        if (cache.dim() != 3 || cache.size(2) != kv.size(1) + pe.size(1)) {
            throw c.error(2, "must be [blocks, block_size, " + (kv.size(1) + pe.size(1)) + "], got " + Arrays.toString(cache.sizes()));
        }
        if (fp8) dtype(c, 2, DType.UINT8, DType.FLOAT8_E4M3FN);
        else if (cache.dtype() != kv.dtype()) throw c.error(2, "dtype " + cache.dtype() + " differs from kv_c's " + kv.dtype());
        for (int i = 0; i <= 2; i++) {
            if (c.tensor(i).stride(-1) != 1 && c.tensor(i).size(-1) > 1) throw c.error(i, "last dimension must be contiguous");
        }
        if (fp8 && (c.tensor(5).numel() < 1 || !c.tensor(5).dtype().isFloatingPoint())) throw c.error(5, "must hold a float scale");
        return fp8;
    }
}
