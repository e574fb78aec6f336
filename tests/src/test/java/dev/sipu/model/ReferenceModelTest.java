package dev.sipu.model;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.sipu.api.CpuMemory;
import dev.sipu.api.DType;
import dev.sipu.api.Device;
import dev.sipu.api.Elements;
import dev.sipu.api.Tensor;
import dev.sipu.api.io.SafeTensors;
import dev.sipu.dispatch.Dispatcher;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The runner on DeepSeek-V3 configurations other than the bundled one, against an independent
 * double-precision implementation of HF's model ({@link ReferenceDeepseekV3}), which is first
 * checked against HF's own outputs on the tiny model. The synthetic checkpoints vary what a runner
 * could wrongly take as fixed: q_proj instead of the q LoRA, neox or interleaved rope, plain rope
 * or YaRN under {@code rope_scaling} with HF's default attention factor, one group or several,
 * shared experts or none, renormalized or raw weights, more dense layers, odd widths.
 */
class ReferenceModelTest {
    private static final Path TINY = Path.of(System.getProperty("sipu.models.dir", "../../shared/models")).resolve("deepseek-v3-tiny");
    private static final Dispatcher D = Dispatcher.standard();

    @TempDir
    static Path tmp;

    @BeforeAll
    static void writeModels() throws Exception {
        // A: q_proj, neox rope without scaling (rope_theta at the top), one group, no shared experts,
        //    raw routing weights, two dense layers.
        ObjectNode a = config(211, 48, 80, 24, 4, 2, 0, 6, 1.0, 32, null, 8, 16, 24, 1, 1, 2, 2, false, false);
        a.put("rope_theta", 5000.0);
        write(tmp.resolve("a"), a, 1);
        // B: q LoRA, interleaved YaRN under rope_scaling with mscale but no mscale_all_dim (HF then
        //    scales cos/sin by 0.1 ln(factor) + 1 and leaves the softmax scale alone), 4 groups,
        //    two shared experts, renormalized and scaled weights.
        ObjectNode b = config(300, 72, 96, 20, 3, 3, 2, 16, 2.5, 48, 40, 16, 16, 20, 4, 2, 3, 1, true, true);
        ObjectNode rs = b.putObject("rope_scaling");
        rs.put("type", "yarn").put("factor", 40.0).put("original_max_position_embeddings", 32).put("beta_fast", 32)
                .put("beta_slow", 1).put("mscale", 0.707).put("rope_theta", 10000.0);
        write(tmp.resolve("b"), b, 2);
    }

    @Test
    void referenceMatchesTransformersOnTheTinyModel() throws Exception {
        ReferenceDeepseekV3 ref = new ReferenceDeepseekV3(TINY);
        try (SafeTensors e = SafeTensors.open(TINY.resolve("expected.safetensors"));
             Tensor cos = e.get("rope_cos"); Tensor sin = e.get("rope_sin"); Tensor logits = e.get("logits");
             Tensor ids = e.get("input_ids"); Tensor generated = e.get("generated_ids")) {
            int half = (int) cos.size(1) / 2;
            for (int p = 0; p < cos.size(0); p++)
                for (int i = 0; i < 2 * half; i++) {
                    assertClose(Elements.getDouble(cos, (long) p * 2 * half + i), ref.cos(p, i % half), 1e-6, "rope_cos " + p + "," + i);
                    assertClose(Elements.getDouble(sin, (long) p * 2 * half + i), ref.sin(p, i % half), 1e-6, "rope_sin " + p + "," + i);
                }
            long[] prompt = longs(ids), want = longs(generated);
            double[][] got = ref.logits(prompt);
            int vocab = got[0].length;
            for (int t = 0; t < got.length; t++)
                for (int v = 0; v < vocab; v++) assertClose(Elements.getDouble(logits, (long) t * vocab + v), got[t][v], 1e-4, "logit " + t + "," + v);
            assertArrayEquals(want, ref.greedy(prompt, want.length - prompt.length), "greedy tokens");
        }
    }

    @ParameterizedTest(name = "model {0} on {1}")
    @CsvSource({"a, sipu:0", "a, cpu", "b, sipu:0", "b, cpu"})
    void runnerMatchesTheReferenceOnOtherConfigurations(String model, String device) throws Exception {
        Path dir = tmp.resolve(model);
        ReferenceDeepseekV3 ref = new ReferenceDeepseekV3(dir);
        long[] prompt = new SplittableRandom(model.hashCode()).longs(9, 0, 200).toArray();
        int n = 6;
        Device dev = Device.parse(device);
        Dispatcher d = D.strict(true);
        try (DeepseekV3 m = new DeepseekV3(dir, DeepseekV3.Mode.FP32, d, dev, prompt.length + n)) {
            Greedy g = new Greedy(m, d, dev);
            double[][] want = ref.logits(prompt);
            try (Tensor got = g.logits(prompt)) {
                int vocab = want[0].length;
                for (int t = 0; t < want.length; t++)
                    for (int v = 0; v < vocab; v++) assertClose(want[t][v], Elements.getDouble(got, (long) t * vocab + v), 1e-3, "logit " + t + "," + v);
            }
            long[] tokens = ref.greedy(prompt, n), cached = g.generate(prompt, n);
            assertArrayEquals(tokens, cached, "greedy tokens over the KV cache");
            assertArrayEquals(cached, g.recompute(prompt, n), "cache = recompute");
        }
    }

    private static void assertClose(double want, double got, double tol, String what) {
        assertTrue(Math.abs(want - got) <= tol, what + ": " + got + " vs " + want);
    }

    private static long[] longs(Tensor t) {
        long[] r = new long[(int) t.numel()];
        for (int i = 0; i < r.length; i++) r[i] = Elements.getLong(t, i);
        return r;
    }

    private static ObjectNode config(int vocab, int hidden, int inter, int moeInter, int layers, int heads, int shared, int routed,
                                     double rsf, int kvRank, Integer qRank, int rope, int nope, int v, int groups, int topkGroup,
                                     int topk, int firstDense, boolean normTopk, boolean interleave) {
        ObjectNode c = new ObjectMapper().createObjectNode();
        c.put("model_type", "deepseek_v3").put("vocab_size", vocab).put("hidden_size", hidden).put("intermediate_size", inter)
                .put("moe_intermediate_size", moeInter).put("num_hidden_layers", layers).put("num_attention_heads", heads)
                .put("num_key_value_heads", heads).put("n_shared_experts", shared).put("n_routed_experts", routed)
                .put("routed_scaling_factor", rsf).put("kv_lora_rank", kvRank).put("qk_rope_head_dim", rope)
                .put("qk_nope_head_dim", nope).put("v_head_dim", v).put("n_group", groups).put("topk_group", topkGroup)
                .put("num_experts_per_tok", topk).put("first_k_dense_replace", firstDense).put("norm_topk_prob", normTopk)
                .put("rms_norm_eps", 1e-6).put("rope_interleave", interleave).put("max_position_embeddings", 256);
        if (qRank == null) c.putNull("q_lora_rank");
        else c.put("q_lora_rank", qRank);
        return c;
    }

    /** A random checkpoint of the config in DeepSeek-V3's naming: bf16 weights, fp32 correction bias. */
    private static void write(Path dir, ObjectNode c, long seed) throws Exception {
        Files.createDirectories(dir);
        Files.writeString(dir.resolve("config.json"), c.toPrettyString());
        SplittableRandom rnd = new SplittableRandom(seed);
        int h = c.get("hidden_size").asInt(), heads = c.get("num_attention_heads").asInt(), nope = c.get("qk_nope_head_dim").asInt();
        int rope = c.get("qk_rope_head_dim").asInt(), v = c.get("v_head_dim").asInt(), rank = c.get("kv_lora_rank").asInt();
        int vocab = c.get("vocab_size").asInt(), routed = c.get("n_routed_experts").asInt(), mi = c.get("moe_intermediate_size").asInt();
        Map<String, Tensor> w = new LinkedHashMap<>();
        w.put("model.embed_tokens.weight", bf16(rnd, 1.0, 0, vocab, h));
        w.put("lm_head.weight", bf16(rnd, 0.06, 0, vocab, h));
        w.put("model.norm.weight", bf16(rnd, 0.1, 1, h));
        for (int l = 0; l < c.get("num_hidden_layers").asInt(); l++) {
            String p = "model.layers." + l + ".", a = p + "self_attn.";
            w.put(p + "input_layernorm.weight", bf16(rnd, 0.1, 1, h));
            w.put(p + "post_attention_layernorm.weight", bf16(rnd, 0.1, 1, h));
            if (c.get("q_lora_rank").isNull()) {
                w.put(a + "q_proj.weight", bf16(rnd, 0.06, 0, heads * (nope + rope), h));
            } else {
                int q = c.get("q_lora_rank").asInt();
                w.put(a + "q_a_proj.weight", bf16(rnd, 0.06, 0, q, h));
                w.put(a + "q_a_layernorm.weight", bf16(rnd, 0.1, 1, q));
                w.put(a + "q_b_proj.weight", bf16(rnd, 0.06, 0, heads * (nope + rope), q));
            }
            w.put(a + "kv_a_proj_with_mqa.weight", bf16(rnd, 0.06, 0, rank + rope, h));
            w.put(a + "kv_a_layernorm.weight", bf16(rnd, 0.1, 1, rank));
            w.put(a + "kv_b_proj.weight", bf16(rnd, 0.06, 0, heads * (nope + v), rank));
            w.put(a + "o_proj.weight", bf16(rnd, 0.06, 0, h, heads * v));
            if (l < c.get("first_k_dense_replace").asInt()) {
                mlp(w, rnd, p + "mlp.", h, c.get("intermediate_size").asInt());
            } else {
                w.put(p + "mlp.gate.weight", bf16(rnd, 0.06, 0, routed, h));
                Tensor bias = Tensor.adopt(CpuMemory.allocate(routed * 4L), DType.FLOAT32, routed);
                for (int e = 0; e < routed; e++) Elements.putDouble(bias.data(), e * 4L, DType.FLOAT32, rnd.nextDouble() * 0.05);
                w.put(p + "mlp.gate.e_score_correction_bias", bias);
                for (int e = 0; e < routed; e++) mlp(w, rnd, p + "mlp.experts." + e + ".", h, mi);
                int shared = c.get("n_shared_experts").asInt();
                if (shared > 0) mlp(w, rnd, p + "mlp.shared_experts.", h, mi * shared);
            }
        }
        SafeTensors.write(dir.resolve("model.safetensors"), w, Map.of("format", "pt"));
        w.values().forEach(Tensor::close);
    }

    private static void mlp(Map<String, Tensor> w, SplittableRandom rnd, String p, int h, int inter) {
        w.put(p + "gate_proj.weight", bf16(rnd, 0.06, 0, inter, h));
        w.put(p + "up_proj.weight", bf16(rnd, 0.06, 0, inter, h));
        w.put(p + "down_proj.weight", bf16(rnd, 0.06, 0, h, inter));
    }

    private static Tensor bf16(SplittableRandom rnd, double std, double mean, long... shape) {
        long n = Arrays.stream(shape).reduce(1, (x, y) -> x * y);
        Tensor t = Tensor.adopt(CpuMemory.allocate(n * 2), DType.BFLOAT16, shape);
        for (long i = 0; i < n; i++) Elements.putDouble(t.data(), i * 2, DType.BFLOAT16, mean + std * gaussian(rnd));
        return t;
    }

    private static double gaussian(SplittableRandom r) {
        return Math.sqrt(-2 * Math.log(1 - r.nextDouble())) * Math.cos(2 * Math.PI * r.nextDouble());
    }
}
