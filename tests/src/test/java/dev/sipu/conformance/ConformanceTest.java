package dev.sipu.conformance;

import dev.sipu.api.Device;
import dev.sipu.dispatch.Dispatcher;
import dev.sipu.sipu.SipuAllocator;
import dev.sipu.sipu.SipuRuntime;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.DynamicTest;
import org.junit.jupiter.api.TestFactory;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.fail;
import static org.junit.jupiter.api.Assumptions.abort;

/**
 * One dynamic test per case and device of the suite in {@code -Dsipu.conformance.dir} (the root pom
 * points it at ../shared/conformance/torch-2.11). Cases whose op cannot run on a device are aborted
 * (reported as skipped), never passed. SIPU runs strict: a CPU fallback is not a SIPU result.
 */
class ConformanceTest {
    static final boolean SIPU_STRICT = true;
    private static Suite suite;

    @BeforeAll
    static void load() {
        String dir = System.getProperty("sipu.conformance.dir");
        if (dir == null) fail("system property sipu.conformance.dir is not set");
        suite = Suite.load(Path.of(dir));
    }

    @AfterAll
    static void close() {
        if (suite != null) suite.close();
    }

    /** Every case on SIPU, then a check that they left no device memory in use (everything closed, nothing leaked). */
    @TestFactory
    List<DynamicTest> sipu() {
        List<DynamicTest> tests = tests(Device.SIPU0, SIPU_STRICT);
        tests.add(DynamicTest.dynamicTest("SIPU memory in use returns to zero", () -> {
            SipuAllocator.Stats s = SipuRuntime.get().allocator(Device.SIPU0).stats();
            assertEquals(0, s.bytesInUse(), "SIPU bytes still in use after the suite: " + s);
        }));
        return tests;
    }

    @TestFactory
    List<DynamicTest> cpu() { return tests(Device.CPU, false); }

    private static List<DynamicTest> tests(Device device, boolean strict) {
        CaseRunner runner = new CaseRunner(Dispatcher.standard().strict(strict));
        List<DynamicTest> out = new ArrayList<>();
        for (Case c : suite.cases()) {
            out.add(DynamicTest.dynamicTest(c.id() + " [" + device + "]", () -> {
                Outcome o = runner.run(c, device);
                switch (o.status()) {
                    case PASSED -> { }
                    case SKIPPED -> abort("skipped: " + o.message());
                    case FAILED -> fail(o.message());
                }
            }));
        }
        return out;
    }
}
