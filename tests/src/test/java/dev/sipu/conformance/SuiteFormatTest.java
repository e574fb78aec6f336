package dev.sipu.conformance;

import dev.sipu.api.CpuMemory;
import dev.sipu.api.DType;
import dev.sipu.api.Device;
import dev.sipu.api.Elements;
import dev.sipu.api.Tensor;
import dev.sipu.api.io.SafeTensors;
import dev.sipu.dispatch.Dispatcher;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The runner on a small suite written here in FORMAT.md's format (other suites than torch-2.11 will be
 * run): a tolerance that gives only rtol keeps the dtype's atol, and a comparison mode the runner does
 * not know is reported as skipped, never compared some other way.
 */
class SuiteFormatTest {
    @TempDir
    Path dir;

    @Test
    void partialToleranceAndUnknownModes() throws IOException {
        double[] a = {0, 1, -2, 3}, b = {0, 0.5, 0.25, -1};
        double[] sum = new double[4], nudged = new double[4];
        for (int i = 0; i < 4; i++) {
            sum[i] = a[i] + b[i];
            nudged[i] = sum[i] + (i == 0 ? 5e-6 : 0); // off only where |expected| ~ 0: atol's business, not rtol's
        }
        Map<String, Tensor> tensors = new LinkedHashMap<>();
        tensors.put("a", f32(a));
        tensors.put("b", f32(b));
        tensors.put("sum", f32(sum));
        tensors.put("nudged", f32(nudged));
        SafeTensors.write(dir.resolve("mini.safetensors"), tensors, Map.of());
        tensors.values().forEach(Tensor::close);
        String add = "\"op\":\"aten::add.Tensor\",\"args\":[{\"t\":\"a\"},{\"t\":\"b\"}],\"kwargs\":{}";
        Files.write(dir.resolve("mini.jsonl"), List.of(
                "{\"id\":\"rtol-only\"," + add + ",\"expect\":{\"returns\":{\"t\":\"nudged\"}},\"tol\":{\"rtol\":0.001}}",
                "{\"id\":\"atol-zero\"," + add + ",\"expect\":{\"returns\":{\"t\":\"nudged\"}},\"tol\":{\"rtol\":0.001,\"atol\":0}}",
                "{\"id\":\"unknown-mode\"," + add + ",\"expect\":{\"returns\":{\"t\":\"sum\"}},\"compare\":\"ulp\"}"));
        try (Suite suite = Suite.load(dir)) {
            CaseRunner runner = new CaseRunner(Dispatcher.standard());
            Map<String, Outcome> got = new LinkedHashMap<>();
            for (Case c : suite.cases()) got.put(c.id(), runner.run(c, Device.CPU));
            assertEquals(Outcome.Status.PASSED, got.get("rtol-only").status(), "rtol alone keeps float32's atol 1e-5: " + got);
            assertEquals(Outcome.Status.FAILED, got.get("atol-zero").status(), "an explicit atol 0 is honoured: " + got);
            Outcome unknown = got.get("unknown-mode");
            assertEquals(Outcome.Status.SKIPPED, unknown.status(), "an unknown compare mode is not run: " + got);
            assertTrue(unknown.message().contains("ulp"), unknown.message());
        }
    }

    private static Tensor f32(double[] v) {
        Tensor t = Tensor.adopt(CpuMemory.allocate(v.length * 4L), DType.FLOAT32, v.length);
        for (int i = 0; i < v.length; i++) Elements.putDouble(t.data(), i * 4L, DType.FLOAT32, v[i]);
        return t;
    }
}
