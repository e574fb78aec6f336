package dev.sipu.model;

import dev.sipu.api.Device;
import dev.sipu.dispatch.Dispatcher;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.nio.file.Files;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The bundled tiny DeepSeek-V3 in fp32 activations against HF transformers' logits and greedy tokens
 * (max |diff| <= 1e-3, identical tokens), with decoding over the KV cache equal to full recompute; on
 * SIPU in strict mode (no CPU fallback) and on CPU. The bf16 and FP8 modes do not meet their criteria
 * yet (see the README) and are reported by {@code ./sipu model}, not asserted here.
 */
class DeepseekV3Test {
    private static final Path TINY = Path.of(System.getProperty("sipu.models.dir", "../../shared/models")).resolve("deepseek-v3-tiny");

    @ParameterizedTest
    @ValueSource(strings = {"sipu:0", "cpu"})
    void fp32MatchesTransformersAndTheCacheMatchesRecompute(String device) throws Exception {
        assertTrue(Files.isRegularFile(TINY.resolve("expected.safetensors")), "no tiny model at " + TINY.toAbsolutePath());
        ModelCheck.Result r = ModelCheck.check(TINY, DeepseekV3.Mode.FP32, Dispatcher.standard().strict(true), Device.parse(device));
        assertTrue(r.pass(), r.toString());
    }
}
