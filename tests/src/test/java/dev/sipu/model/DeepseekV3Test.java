package dev.sipu.model;

import dev.sipu.api.Device;
import dev.sipu.dispatch.Dispatcher;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.nio.file.Files;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The bundled tiny DeepSeek-V3 against HF transformers, on SIPU in strict mode (no CPU fallback) and on
 * CPU: fp32 activations (max |diff| <= 1e-3, identical greedy tokens, decoding over the KV cache equal
 * to full recompute) and bf16 activations (max |diff| <= 0.15, argmax equal at >= 11 of 12 positions).
 * and FP8 weights (teacher-forced logits of the FP8 tokens: max |diff| <= 0.25, argmax equal at >= 90%
 * of positions).
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

    @ParameterizedTest
    @ValueSource(strings = {"sipu:0", "cpu"})
    void bf16StaysWithinItsToleranceOfTheFp32Reference(String device) throws Exception {
        assertTrue(Files.isRegularFile(TINY.resolve("expected.safetensors")), "no tiny model at " + TINY.toAbsolutePath());
        ModelCheck.Result r = ModelCheck.check(TINY, DeepseekV3.Mode.BF16, Dispatcher.standard().strict(true), Device.parse(device));
        assertTrue(r.pass(), r.toString());
    }

    @ParameterizedTest
    @ValueSource(strings = {"sipu:0", "cpu"})
    void fp8FollowsDeepseeksFp8Semantics(String device) throws Exception {
        assertTrue(Files.isRegularFile(TINY.resolve("expected.safetensors")), "no tiny model at " + TINY.toAbsolutePath());
        ModelCheck.Result r = ModelCheck.check(TINY, DeepseekV3.Mode.FP8, Dispatcher.standard().strict(true), Device.parse(device));
        assertTrue(r.pass(), r.toString());
    }
}
