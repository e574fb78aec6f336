package dev.sipu.model;

import dev.sipu.api.Device;
import dev.sipu.dispatch.Dispatcher;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import java.nio.file.Files;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The bundled tiny DeepSeek-V3 against HF transformers, on SIPU in strict mode (no CPU fallback) and on
 * CPU: fp32 activations (max |diff| <= 1e-3, identical greedy tokens, decoding over the KV cache equal
 * to full recompute), bf16 activations (max |diff| <= 0.15, argmax equal at >= 11 of 12 positions)
 * and FP8 weights (teacher-forced logits of the FP8 tokens: max |diff| <= 0.25, argmax equal at >= 90%
 * of positions).
 */
class DeepseekV3Test {
    private static final Path TINY = Path.of(System.getProperty("sipu.models.dir", "../../shared/models")).resolve("deepseek-v3-tiny");

    @ParameterizedTest(name = "{0} on {1}")
    @CsvSource({"FP32, sipu:0", "FP32, cpu", "BF16, sipu:0", "BF16, cpu", "FP8, sipu:0", "FP8, cpu"})
    void meetsTheModelsCriterion(DeepseekV3.Mode mode, String device) throws Exception {
        assertTrue(Files.isRegularFile(TINY.resolve("expected.safetensors")), "no tiny model at " + TINY.toAbsolutePath());
        ModelCheck.Result r = ModelCheck.check(TINY, mode, Dispatcher.standard().strict(true), Device.parse(device));
        assertTrue(r.pass(), r.toString());
    }
}
