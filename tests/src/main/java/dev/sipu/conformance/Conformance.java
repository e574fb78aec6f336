package dev.sipu.conformance;

import dev.sipu.api.Device;
import dev.sipu.dispatch.Dispatcher;

import java.nio.file.Path;
import java.util.List;

/** Runs whole suites on a list of devices into one {@link Report}. */
public final class Conformance {
    private Conformance() {}

    /** SIPU runs strict (a CPU fallback is not a SIPU result) when {@code strict}; the CPU never falls back. */
    public static Report run(List<Path> dirs, List<Device> devices, boolean strict) {
        Report report = new Report();
        Dispatcher base = Dispatcher.standard();
        for (Path dir : dirs) {
            try (Suite suite = Suite.load(dir)) {
                for (Device d : devices) {
                    CaseRunner runner = new CaseRunner(base.strict(strict && d.isSipu()));
                    for (Case c : suite.cases()) report.add(c, d, runner.run(c, d));
                }
            }
        }
        return report;
    }
}
