package dev.sipu.model;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.sipu.api.Elements;
import dev.sipu.api.Tensor;
import dev.sipu.api.io.SafeTensors;

import java.io.IOException;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.HashMap;
import java.util.Map;

/**
 * DeepSeek-V3 as HF transformers computes it, in double precision over plain arrays: the oracle for
 * the runner on configurations that have no recorded output. It is written from HF's modeling and
 * rope code, not from the runner: MLA unabsorbed (keys and values expanded per head from kv_b_proj),
 * the router with HF's masking, experts one token at a time, and HF's YaRN parameter rules read
 * from the config here, independently of {@link ModelConfig}. {@code ReferenceModelTest} checks it
 * against HF's own logits on the tiny model before it judges anything else.
 */
final class ReferenceDeepseekV3 {
    private final Map<String, double[]> weights = new HashMap<>();
    private final Map<String, long[]> shapes = new HashMap<>();
    private final int hidden, layers, heads, nope, ropeDim, vDim, kvRank, firstDense, routed, topk, groups, topkGroup;
    private final boolean qLora, normTopk, interleave, sharedExperts;
    private final double eps, rsf, scale, attentionFactor;
    private final double[] invFreq;

    ReferenceDeepseekV3(Path dir) throws IOException {
        JsonNode c = new ObjectMapper().readTree(dir.resolve("config.json").toFile());
        hidden = c.get("hidden_size").asInt();
        layers = c.get("num_hidden_layers").asInt();
        heads = c.get("num_attention_heads").asInt();
        nope = c.get("qk_nope_head_dim").asInt();
        ropeDim = c.get("qk_rope_head_dim").asInt();
        vDim = c.get("v_head_dim").asInt();
        kvRank = c.get("kv_lora_rank").asInt();
        qLora = c.hasNonNull("q_lora_rank");
        firstDense = c.path("first_k_dense_replace").asInt(0);
        routed = c.get("n_routed_experts").asInt();
        sharedExperts = c.path("n_shared_experts").asInt(0) > 0;
        topk = c.get("num_experts_per_tok").asInt();
        groups = c.path("n_group").asInt(1);
        topkGroup = c.path("topk_group").asInt(1);
        normTopk = c.path("norm_topk_prob").asBoolean(false);
        rsf = c.path("routed_scaling_factor").asDouble(1);
        eps = c.path("rms_norm_eps").asDouble(1e-6);
        interleave = c.path("rope_interleave").asBoolean(true);

        JsonNode r = c.hasNonNull("rope_parameters") ? c.get("rope_parameters") : c.path("rope_scaling");
        String type = r.path("rope_type").asText(r.path("type").asText("default"));
        double base = r.has("rope_theta") ? r.get("rope_theta").asDouble() : c.path("rope_theta").asDouble(10000);
        invFreq = new double[ropeDim / 2];
        for (int i = 0; i < invFreq.length; i++) invFreq[i] = 1 / Math.pow(base, 2.0 * i / ropeDim);
        double qkScale = Math.pow(nope + ropeDim, -0.5), af = 1;
        if (type.equals("yarn")) {
            double factor = r.get("factor").asDouble();
            double mscale = r.path("mscale").asDouble(0), mscaleAll = r.path("mscale_all_dim").asDouble(0);
            af = r.has("attention_factor") ? r.get("attention_factor").asDouble()
                    : mscale != 0 && mscaleAll != 0 ? getMscale(factor, mscale) / getMscale(factor, mscaleAll) : getMscale(factor, 1);
            double fast = r.path("beta_fast").asDouble(32), slow = r.path("beta_slow").asDouble(1);
            int orig = r.get("original_max_position_embeddings").asInt();
            double low = correctionDim(fast, ropeDim, base, orig), high = correctionDim(slow, ropeDim, base, orig);
            if (r.path("truncate").asBoolean(true)) {
                low = Math.floor(low);
                high = Math.ceil(high);
            }
            low = Math.max(low, 0);
            high = Math.min(high, ropeDim - 1);
            if (low == high) high += 0.001;
            for (int i = 0; i < invFreq.length; i++) {
                double extrapolation = 1 - Math.min(1, Math.max(0, (i - low) / (high - low)));
                invFreq[i] = invFreq[i] / factor * (1 - extrapolation) + invFreq[i] * extrapolation;
            }
            if (mscaleAll != 0) qkScale *= getMscale(factor, mscaleAll) * getMscale(factor, mscaleAll);
        }
        attentionFactor = af;
        scale = qkScale;

        try (SafeTensors f = SafeTensors.open(dir.resolve("model.safetensors"))) {
            for (String name : f.entries().keySet()) {
                try (Tensor t = f.get(name)) {
                    double[] v = new double[(int) t.numel()];
                    for (int i = 0; i < v.length; i++) v[i] = Elements.getDouble(t, i);
                    weights.put(name, v);
                    shapes.put(name, t.sizes());
                }
            }
        }
    }

    private static double getMscale(double factor, double m) { return factor <= 1 ? 1 : 0.1 * m * Math.log(factor) + 1; }

    private static double correctionDim(double rotations, int dim, double base, int maxPos) {
        return dim * Math.log(maxPos / (rotations * 2 * Math.PI)) / (2 * Math.log(base));
    }

    /** cos of position p for rope pair i, HF's table (attention factor included). */
    double cos(int p, int i) { return Math.cos(p * invFreq[i]) * attentionFactor; }
    double sin(int p, int i) { return Math.sin(p * invFreq[i]) * attentionFactor; }

    /** Logits [T][vocab] of the whole sequence (causal). */
    double[][] logits(long[] ids) {
        int t = ids.length;
        double[] embed = w("model.embed_tokens.weight");
        double[][] x = new double[t][];
        for (int i = 0; i < t; i++) x[i] = Arrays.copyOfRange(embed, (int) ids[i] * hidden, (int) (ids[i] + 1) * hidden);
        for (int l = 0; l < layers; l++) {
            String p = "model.layers." + l + ".";
            add(x, attention(norm(x, w(p + "input_layernorm.weight")), p + "self_attn."));
            double[][] h = norm(x, w(p + "post_attention_layernorm.weight"));
            add(x, l < firstDense ? mlp(h, p + "mlp.") : moe(h, p + "mlp."));
        }
        return linear(norm(x, w("model.norm.weight")), "lm_head.weight");
    }

    /** Greedy continuation by full recompute, as HF's generate produced the expected tokens. */
    long[] greedy(long[] prompt, int n) {
        long[] seq = Arrays.copyOf(prompt, prompt.length + n);
        for (int i = 0; i < n; i++) {
            double[][] l = logits(Arrays.copyOf(seq, prompt.length + i));
            seq[prompt.length + i] = argmax(l[l.length - 1]);
        }
        return seq;
    }

    static int argmax(double[] v) {
        int b = 0;
        for (int i = 1; i < v.length; i++) if (v[i] > v[b]) b = i;
        return b;
    }

    private double[][] attention(double[][] h, String p) {
        int t = h.length, qk = nope + ropeDim, kvw = nope + vDim;
        double[][] q = qLora ? linear(norm(linear(h, p + "q_a_proj.weight"), w(p + "q_a_layernorm.weight")), p + "q_b_proj.weight")
                : linear(h, p + "q_proj.weight");
        double[][] ckv = linear(h, p + "kv_a_proj_with_mqa.weight");
        double[][] latent = new double[t][], kPe = new double[t][];
        for (int i = 0; i < t; i++) {
            latent[i] = Arrays.copyOfRange(ckv[i], 0, kvRank);
            kPe[i] = rotate(Arrays.copyOfRange(ckv[i], kvRank, kvRank + ropeDim), i);
        }
        double[][] kv = linear(norm(latent, w(p + "kv_a_layernorm.weight")), p + "kv_b_proj.weight");
        double[][] out = new double[t][heads * vDim];
        for (int hd = 0; hd < heads; hd++) {
            for (int i = 0; i < t; i++) {
                double[] qPe = rotate(Arrays.copyOfRange(q[i], hd * qk + nope, (hd + 1) * qk), i);
                double[] s = new double[i + 1];
                double max = Double.NEGATIVE_INFINITY;
                for (int j = 0; j <= i; j++) {
                    double dot = 0;
                    for (int d = 0; d < nope; d++) dot += q[i][hd * qk + d] * kv[j][hd * kvw + d];
                    for (int d = 0; d < ropeDim; d++) dot += qPe[d] * kPe[j][d];
                    s[j] = dot * scale;
                    max = Math.max(max, s[j]);
                }
                double z = 0;
                for (int j = 0; j <= i; j++) z += s[j] = Math.exp(s[j] - max);
                for (int j = 0; j <= i; j++)
                    for (int d = 0; d < vDim; d++) out[i][hd * vDim + d] += s[j] / z * kv[j][hd * kvw + nope + d];
            }
        }
        return linear(out, p + "o_proj.weight");
    }

    /** HF's rotation: pairs (2i, 2i+1) when the checkpoint interleaves them, else halves (i, i + d/2). */
    private double[] rotate(double[] x, int pos) {
        int half = ropeDim / 2;
        double[] y = new double[ropeDim];
        for (int i = 0; i < half; i++) {
            int a = interleave ? 2 * i : i, b = interleave ? 2 * i + 1 : i + half;
            y[a] = x[a] * cos(pos, i) - x[b] * sin(pos, i);
            y[b] = x[b] * cos(pos, i) + x[a] * sin(pos, i);
        }
        return y;
    }

    private double[][] mlp(double[][] h, String p) {
        double[][] g = linear(h, p + "gate_proj.weight"), u = linear(h, p + "up_proj.weight");
        for (int i = 0; i < g.length; i++)
            for (int j = 0; j < g[i].length; j++) g[i][j] = g[i][j] / (1 + Math.exp(-g[i][j])) * u[i][j];
        return linear(g, p + "down_proj.weight");
    }

    /** HF's DeepseekV3MoE: noaux_tc routing (non-chosen groups masked with 0.0), weighted experts, shared experts. */
    private double[][] moe(double[][] h, String p) {
        double[][] logits = linear(h, p + "gate.weight");
        double[] bias = w(p + "gate.e_score_correction_bias");
        int size = routed / groups;
        double[][] y = sharedExperts ? mlp(h, p + "shared_experts.") : new double[h.length][hidden];
        for (int t = 0; t < h.length; t++) {
            double[] s = new double[routed], choice = new double[routed], group = new double[groups];
            for (int e = 0; e < routed; e++) {
                s[e] = 1 / (1 + Math.exp(-logits[t][e]));
                choice[e] = s[e] + bias[e];
            }
            for (int g = 0; g < groups; g++) {
                int[] best = top(Arrays.copyOfRange(choice, g * size, (g + 1) * size), Math.min(2, size));
                for (int b : best) group[g] += choice[g * size + b];
            }
            double[] masked = new double[routed];
            for (int g : top(group, topkGroup)) System.arraycopy(choice, g * size, masked, g * size, size);
            int[] experts = top(masked, topk);
            double sum = 0;
            for (int e : experts) sum += s[e];
            for (int e : experts) {
                double weight = (normTopk ? s[e] / (sum + 1e-20) : s[e]) * rsf;
                double[] out = mlp(new double[][] {h[t]}, p + "experts." + e + ".")[0];
                for (int j = 0; j < hidden; j++) y[t][j] += weight * out[j];
            }
        }
        return y;
    }

    /** Indices of the k largest values, largest first, ties to the lower index (torch.topk on CPU). */
    private static int[] top(double[] v, int k) {
        Integer[] idx = new Integer[v.length];
        for (int i = 0; i < v.length; i++) idx[i] = i;
        Arrays.sort(idx, (a, b) -> v[a] != v[b] ? Double.compare(v[b], v[a]) : Integer.compare(a, b));
        int[] r = new int[k];
        for (int i = 0; i < k; i++) r[i] = idx[i];
        return r;
    }

    private double[][] norm(double[][] x, double[] weight) {
        double[][] y = new double[x.length][];
        for (int i = 0; i < x.length; i++) {
            double ss = 0;
            for (double v : x[i]) ss += v * v;
            double inv = 1 / Math.sqrt(ss / x[i].length + eps);
            y[i] = new double[x[i].length];
            for (int j = 0; j < x[i].length; j++) y[i][j] = weight[j] * (x[i][j] * inv);
        }
        return y;
    }

    private double[][] linear(double[][] x, String name) {
        double[] w = w(name);
        long[] shape = shapes.get(name);
        int out = (int) shape[0], in = (int) shape[1];
        double[][] y = new double[x.length][out];
        for (int t = 0; t < x.length; t++)
            for (int o = 0; o < out; o++) {
                double s = 0;
                for (int i = 0; i < in; i++) s += x[t][i] * w[o * in + i];
                y[t][o] = s;
            }
        return y;
    }

    private static void add(double[][] x, double[][] y) {
        for (int i = 0; i < x.length; i++)
            for (int j = 0; j < x[i].length; j++) x[i][j] += y[i][j];
    }

    private double[] w(String name) {
        double[] v = weights.get(name);
        if (v == null) throw new IllegalArgumentException("no weight " + name);
        return v;
    }
}
