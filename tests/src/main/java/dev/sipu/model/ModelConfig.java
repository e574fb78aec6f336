package dev.sipu.model;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

import java.io.IOException;
import java.nio.file.Path;

/**
 * The DeepSeek-V3 fields of an HF {@code config.json}. Rope settings are read from
 * {@code rope_parameters} (newer transformers) or {@code rope_scaling} (the published checkpoints);
 * {@code q_lora_rank} null means a plain q_proj.
 */
public record ModelConfig(int vocab, int hidden, int intermediate, int moeIntermediate, int layers, int heads,
                          int sharedExperts, int routedExperts, double routedScaling, int kvLoraRank, Integer qLoraRank,
                          int ropeDim, int nopeDim, int vDim, int groups, int topkGroup, int topk, int firstDense,
                          boolean normTopk, double eps, boolean ropeInterleave, Rope rope) {

    /**
     * YaRN (or plain) rope: type "yarn" scales frequencies and the softmax as DeepSeek-V3 does.
     * {@code attentionFactor} is the config's explicit cos/sin scale, or null to derive it from the
     * mscales; {@code truncate} rounds the correction range to whole dimensions (HF's default).
     */
    public record Rope(String type, double theta, double factor, int originalMax, double betaFast, double betaSlow,
                       double mscale, double mscaleAllDim, Double attentionFactor, boolean truncate) {}

    public int qkDim() { return nopeDim + ropeDim; }

    public static ModelConfig load(Path dir) throws IOException {
        JsonNode j = new ObjectMapper().readTree(dir.resolve("config.json").toFile());
        JsonNode r = j.hasNonNull("rope_parameters") ? j.get("rope_parameters") : j.path("rope_scaling");
        double theta = r.has("rope_theta") ? r.get("rope_theta").asDouble() : j.path("rope_theta").asDouble(10000);
        String type = r.path("rope_type").asText(r.path("type").asText("default"));
        Rope rope = new Rope(type, theta, r.path("factor").asDouble(1), r.path("original_max_position_embeddings").asInt(4096),
                r.path("beta_fast").asDouble(32), r.path("beta_slow").asDouble(1), r.path("mscale").asDouble(0),
                r.path("mscale_all_dim").asDouble(0), r.hasNonNull("attention_factor") ? r.get("attention_factor").asDouble() : null,
                r.path("truncate").asBoolean(true));
        return new ModelConfig(j.get("vocab_size").asInt(), j.get("hidden_size").asInt(), j.get("intermediate_size").asInt(),
                j.get("moe_intermediate_size").asInt(), j.get("num_hidden_layers").asInt(), j.get("num_attention_heads").asInt(),
                j.path("n_shared_experts").asInt(0), j.get("n_routed_experts").asInt(), j.path("routed_scaling_factor").asDouble(1),
                j.get("kv_lora_rank").asInt(), j.hasNonNull("q_lora_rank") ? j.get("q_lora_rank").asInt() : null,
                j.get("qk_rope_head_dim").asInt(), j.get("qk_nope_head_dim").asInt(), j.get("v_head_dim").asInt(),
                j.path("n_group").asInt(1), j.path("topk_group").asInt(1), j.get("num_experts_per_tok").asInt(),
                j.path("first_k_dense_replace").asInt(0), j.path("norm_topk_prob").asBoolean(true),
                j.path("rms_norm_eps").asDouble(1e-6), j.path("rope_interleave").asBoolean(true), rope);
    }
}
