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

    /**
     * Encodings and expectations read by name, not by position; what the runner cannot decode, check or
     * bind, and inputs the library does not implement, are skipped, never passed (an error case must
     * not pass on a binding error or on "not implemented").
     */
    @Test
    void casesTheRunnerCannotRunAreSkippedAndNamesAreResolved() throws IOException {
        double[] a = {1, 2, -3, 4}, b = {2, 4, 1, 8};
        double[] sum = new double[4], quot = new double[4];
        for (int i = 0; i < 4; i++) {
            sum[i] = a[i] + b[i];
            quot[i] = a[i] / b[i];
        }
        Map<String, Tensor> tensors = new LinkedHashMap<>();
        tensors.put("a", f32(a));
        tensors.put("b", f32(b));
        tensors.put("sum", f32(sum));
        tensors.put("quot", f32(quot));
        Tensor x = Tensor.adopt(CpuMemory.allocate(2 * 4 * 4L), DType.FLOAT32, 2, 4);
        for (int i = 0; i < 8; i++) Elements.putDouble(x.data(), i * 4L, DType.FLOAT32, i - 3.5);
        tensors.put("x", x);
        Tensor q = Tensor.adopt(CpuMemory.allocate(8), DType.INT8, 2, 4);
        tensors.put("q", q);
        Tensor s = Tensor.adopt(CpuMemory.allocate(8), DType.FLOAT32, 2, 1);
        tensors.put("s", s);
        Tensor azp = Tensor.adopt(CpuMemory.allocate(8), DType.INT32, 2, 1);
        tensors.put("azp", azp);
        // topk_softmax of one token over 3 experts, top 2: softmax([0, ln 3, ln 2]) = [1/6, 1/2, 1/3]
        tensors.put("gating", f32(new double[] {0, Math.log(3), Math.log(2)}, 1, 3));
        tensors.put("w", f32(new double[2], 1, 2));
        tensors.put("ids", i32(0, 0));
        tensors.put("tei", i32(0, 0));
        tensors.put("w_want", f32(new double[] {1 / 3.0, 1 / 2.0}, 1, 2));
        tensors.put("ids_want", i32(2, 1));
        tensors.put("tei_want", i32(0, 1));
        SafeTensors.write(dir.resolve("names.safetensors"), tensors, Map.of());
        tensors.values().forEach(Tensor::close);
        String add = "\"op\":\"aten::add.Tensor\",";
        Files.write(dir.resolve("names.jsonl"), List.of(
                "{\"id\":\"view-first\"," + add + "\"args\":[{\"view\":{\"size\":[4],\"stride\":[1],\"offset\":0},\"t\":\"a\"},{\"t\":\"b\"}],"
                        + "\"expect\":{\"returns\":{\"t\":\"sum\"}}}",
                "{\"id\":\"unknown-encoding\"," + add + "\"args\":[{\"t\":\"a\"},{\"complex\":[1,2]}],\"expect\":{\"returns\":{\"t\":\"sum\"}}}",
                "{\"id\":\"unknown-dtype\"," + add + "\"args\":[{\"t\":\"a\"},{\"dtype\":\"complex64\"}],\"expect\":{\"error\":true}}",
                "{\"id\":\"unknown-expectation\"," + add + "\"args\":[{\"t\":\"a\"},{\"t\":\"b\"}],"
                        + "\"expect\":{\"returns\":{\"t\":\"sum\"},\"grad\":{\"t\":\"a\"}}}",
                "{\"id\":\"unknown-kwarg-error\"," + add + "\"args\":[{\"t\":\"a\"},{\"t\":\"b\"}],\"kwargs\":{\"beta\":{\"int\":2}},"
                        + "\"expect\":{\"error\":true}}",
                "{\"id\":\"too-many-args-error\"," + add + "\"args\":[{\"t\":\"a\"},{\"t\":\"b\"},{\"int\":1},{\"int\":1}],\"expect\":{\"error\":true}}",
                "{\"id\":\"mutated-by-name\",\"op\":\"aten::div_.Tensor\",\"args\":[{\"t\":\"a\"},{\"t\":\"b\"}],"
                        + "\"expect\":{\"mutated\":{\"self\":{\"t\":\"quot\"}}}}",
                "{\"id\":\"routing-keys-reversed\",\"op\":\"_moe_C::topk_softmax\",\"args\":[{\"t\":\"w\"},{\"t\":\"ids\"},{\"t\":\"tei\"},{\"t\":\"gating\"}],"
                        + "\"expect\":{\"mutated\":{\"2\":{\"t\":\"tei_want\"},\"1\":{\"t\":\"ids_want\"},\"0\":{\"t\":\"w_want\"}}},\"compare\":\"topk_routing\"}",
                "{\"id\":\"azp-error\",\"op\":\"_C::dynamic_scaled_int8_quant\",\"args\":[{\"t\":\"q\"},{\"t\":\"x\"},{\"t\":\"s\"},{\"t\":\"azp\"}],"
                        + "\"expect\":{\"error\":true}}"));
        try (Suite suite = Suite.load(dir)) {
            CaseRunner runner = new CaseRunner(Dispatcher.standard());
            Map<String, Outcome> got = new LinkedHashMap<>();
            for (Case c : suite.cases()) got.put(c.id(), runner.run(c, Device.CPU));
            assertEquals(Outcome.Status.PASSED, got.get("view-first").status(), "a view given before its tensor: " + got);
            assertEquals(Outcome.Status.PASSED, got.get("mutated-by-name").status(), "mutated named by the schema name: " + got);
            assertEquals(Outcome.Status.PASSED, got.get("routing-keys-reversed").status(), "topk_routing keys in any order: " + got);
            for (String id : List.of("unknown-encoding", "unknown-dtype", "unknown-expectation", "unknown-kwarg-error", "too-many-args-error", "azp-error")) {
                assertEquals(Outcome.Status.SKIPPED, got.get(id).status(), id + ": " + got.get(id));
            }
        }
    }

    /** A .safetensors the reader cannot take (a dtype outside FORMAT.md's list) skips that file's cases, not the suite. */
    @Test
    void anUnreadableTensorFileSkipsOnlyItsCases() throws IOException {
        byte[] header = "{\"x\":{\"dtype\":\"U16\",\"shape\":[1],\"data_offsets\":[0,2]}}".getBytes(java.nio.charset.StandardCharsets.US_ASCII);
        java.nio.ByteBuffer b = java.nio.ByteBuffer.allocate(8 + header.length + 2).order(java.nio.ByteOrder.LITTLE_ENDIAN);
        b.putLong(header.length).put(header).putShort((short) 7);
        Files.write(dir.resolve("bad.safetensors"), b.array());
        Files.write(dir.resolve("bad.jsonl"), List.of("{\"id\":\"u16\",\"op\":\"aten::neg\",\"args\":[{\"t\":\"x\"}],\"expect\":{\"returns\":{\"t\":\"x\"}}}"));
        Map<String, Tensor> tensors = new LinkedHashMap<>();
        tensors.put("a", f32(new double[] {1, -2}));
        tensors.put("na", f32(new double[] {-1, 2}));
        SafeTensors.write(dir.resolve("good.safetensors"), tensors, Map.of());
        tensors.values().forEach(Tensor::close);
        Files.write(dir.resolve("good.jsonl"), List.of("{\"id\":\"neg\",\"op\":\"aten::neg\",\"args\":[{\"t\":\"a\"}],\"expect\":{\"returns\":{\"t\":\"na\"}}}"));
        try (Suite suite = Suite.load(dir)) {
            CaseRunner runner = new CaseRunner(Dispatcher.standard());
            Map<String, Outcome> got = new LinkedHashMap<>();
            for (Case c : suite.cases()) got.put(c.id(), runner.run(c, Device.CPU));
            assertEquals(Outcome.Status.SKIPPED, got.get("u16").status(), "" + got);
            assertEquals(Outcome.Status.PASSED, got.get("neg").status(), "" + got);
        }
    }

    /** fp8_quant: equal decoded values (NaN of either sign included, +0 and -0) or adjacent codes pass; others fail. */
    @Test
    void fp8CodesCompareByDecodedValue() {
        byte[][] pass = {{0x7F, (byte) 0xFF}, {0x00, (byte) 0x80}, {0x30, 0x31}, {0x01, (byte) 0x80}};
        byte[][] fail = {{0x30, 0x32}, {0x7E, 0x7F}, {0x08, (byte) 0x88}};
        for (byte[][] set : new byte[][][] {pass, fail}) {
            for (byte[] p : set) {
                try (Tensor a = e4m3(p[0]); Tensor e = e4m3(p[1])) {
                    String m = Compare.fp8("x", a, e, false, null);
                    assertEquals(set == pass, m == null, String.format("codes 0x%02x vs 0x%02x: %s", p[0], p[1], m));
                }
            }
        }
    }

    private static Tensor f32(double[] v, long... shape) {
        Tensor t = Tensor.adopt(CpuMemory.allocate(v.length * 4L), DType.FLOAT32, shape);
        for (int i = 0; i < v.length; i++) Elements.putDouble(t.data(), i * 4L, DType.FLOAT32, v[i]);
        return t;
    }

    private static Tensor i32(int... v) {
        Tensor t = Tensor.adopt(CpuMemory.allocate(v.length * 4L), DType.INT32, 1, v.length);
        for (int i = 0; i < v.length; i++) t.data().setAtIndex(java.lang.foreign.ValueLayout.JAVA_INT, i, v[i]);
        return t;
    }

    private static Tensor e4m3(byte code) {
        Tensor t = Tensor.adopt(CpuMemory.allocate(1), DType.FLOAT8_E4M3FN, 1);
        t.data().set(java.lang.foreign.ValueLayout.JAVA_BYTE, 0, code);
        return t;
    }

    private static Tensor f32(double[] v) {
        Tensor t = Tensor.adopt(CpuMemory.allocate(v.length * 4L), DType.FLOAT32, v.length);
        for (int i = 0; i < v.length; i++) Elements.putDouble(t.data(), i * 4L, DType.FLOAT32, v[i]);
        return t;
    }
}
