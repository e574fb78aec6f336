package dev.sipu.cli;

import ch.qos.logback.classic.Level;
import ch.qos.logback.classic.Logger;
import dev.sipu.api.Device;
import dev.sipu.api.schema.OpSchema;
import dev.sipu.model.DeepseekV3;
import dev.sipu.model.Greedy;
import dev.sipu.model.ModelCheck;
import dev.sipu.conformance.Conformance;
import dev.sipu.conformance.Report;
import dev.sipu.dispatch.DispatchKey;
import dev.sipu.dispatch.Dispatcher;
import dev.sipu.dispatch.OpRegistry;
import org.slf4j.LoggerFactory;

import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/** The command line behind {@code ./sipu}: {@code conformance} and {@code demo}. */
public final class Main {
    private Main() {}

    public static void main(String[] argv) {
        List<String> args = new ArrayList<>(List.of(argv));
        if (args.remove("--trace")) level("dev.sipu.trace", Level.TRACE);
        if (args.remove("-v") || args.remove("--verbose")) level("dev.sipu", Level.DEBUG);
        String cmd = args.isEmpty() ? "help" : args.removeFirst();
        int status = switch (cmd) {
            case "conformance" -> conformance(args);
            case "demo" -> demo(args);
            case "model" -> model(args);
            default -> {
                System.out.println("usage: sipu conformance DIR... [--device sipu|cpu|all] [--tsv] [--strict] [--trace]");
                System.out.println("       sipu demo [--suite DIR]");
                System.out.println("       sipu model DIR [--device sipu|cpu|all]");
                yield cmd.equals("help") ? 0 : 2;
            }
        };
        System.exit(status);
    }

    private static void level(String logger, Level l) {
        ((Logger) LoggerFactory.getLogger(logger)).setLevel(l);
    }

    private static List<Device> devices(String which) {
        return switch (which) {
            case "cpu" -> List.of(Device.CPU);
            case "sipu" -> List.of(Device.SIPU0);
            case "all" -> List.of(Device.SIPU0, Device.CPU);
            default -> throw new IllegalArgumentException("--device must be sipu, cpu or all, got " + which);
        };
    }

    private static int conformance(List<String> args) {
        String device = "all";
        boolean tsv = false, strict = false;
        List<Path> dirs = new ArrayList<>();
        for (int i = 0; i < args.size(); i++) {
            switch (args.get(i)) {
                case "--device" -> device = args.get(++i);
                case "--tsv" -> tsv = true;
                case "--strict" -> strict = true;
                default -> dirs.add(Path.of(args.get(i)));
            }
        }
        if (dirs.isEmpty()) {
            System.err.println("conformance: give at least one suite folder");
            return 2;
        }
        Report r = Conformance.run(dirs, devices(device), strict);
        r.print(System.out, tsv);
        return r.failed() > 0 ? 1 : 0;
    }

    /** The coverage table of every op, then the conformance summary per device. */
    private static int demo(List<String> args) {
        Path suite = args.size() >= 2 && args.get(0).equals("--suite") ? Path.of(args.get(1)) : defaultSuite();
        Dispatcher d = Dispatcher.standard();
        PrintStream out = System.out;
        coverage(d, out);
        out.println();
        if (!Files.isDirectory(suite)) {
            out.println("conformance suite not found at " + suite + " (give --suite DIR)");
            return 1;
        }
        long t0 = System.nanoTime();
        Report r = Conformance.run(List.of(suite), devices("all"), true);
        out.printf("conformance on %s (SIPU strict: no CPU fallback), %.1f s%n", suite, (System.nanoTime() - t0) / 1e9);
        for (Device dev : devices("all")) {
            long[] t = r.totals(dev.toString());
            out.printf("  %-7s %4d passed, %4d failed, %4d skipped%n", dev, t[0], t[1], t[2]);
        }
        if (!r.failures().isEmpty()) {
            out.println("failures:");
            r.failures().forEach(f -> out.println("  " + f));
        }
        out.println(r.closingLine());
        out.println();
        boolean generated = generate(out);
        return r.failed() > 0 || !generated ? 1 : 0;
    }

    /** Greedy generation with the bundled tiny DeepSeek-V3 on SIPU (strict), with the ops that ran and where. */
    private static boolean generate(PrintStream out) {
        Path dir = defaultSuite().resolve("../../models/deepseek-v3-tiny").normalize();
        if (!Files.isRegularFile(dir.resolve("config.json"))) {
            out.println("tiny model not found at " + dir);
            return false;
        }
        Dispatcher d = Dispatcher.create().strict(true);
        long[] prompt = {175, 196, 537, 502, 579, 211, 919, 615, 348, 185, 398, 535};
        int n = 16;
        try (DeepseekV3 model = new DeepseekV3(dir, DeepseekV3.Mode.FP32, d, Device.SIPU0, prompt.length + n)) {
            Greedy g = new Greedy(model, d, Device.SIPU0);
            g.generate(prompt, 2); // warm-up
            long t0 = System.nanoTime();
            long[] seq = g.generate(prompt, n);
            double s = (System.nanoTime() - t0) / 1e9;
            out.printf("tiny DeepSeek-V3 (%s), fp32, sipu: prompt %s%n  generated %s%n  %.1f tokens/s (prefill of %d tokens + %d decode steps over the KV cache)%n",
                    dir, java.util.Arrays.toString(prompt), java.util.Arrays.toString(java.util.Arrays.copyOfRange(seq, prompt.length, seq.length)),
                    n / s, prompt.length, n - 1);
            out.printf("  %-40s %8s %8s %10s %9s%n", "op", "sipu", "cpu", "composite", "fallback");
            long fallbacks = 0;
            for (Dispatcher.OpStats st : d.stats()) {
                if (st.sipuCalls() + st.cpuCalls() + st.compositeCalls() == 0) continue;
                out.printf("  %-40s %8d %8d %10d %9d%n", st.op(), st.sipuCalls(), st.cpuCalls(), st.compositeCalls(), st.fallbacks());
                fallbacks += st.fallbacks();
            }
            out.println("  CPU fallbacks: " + fallbacks);
            return fallbacks == 0;
        } catch (Exception e) {
            out.println("generation failed: " + e);
            return false;
        }
    }

    /** ./sipu model DIR [--device ...]: the three modes against DIR's expected.safetensors, SIPU strict. */
    private static int model(List<String> args) {
        String device = "all";
        Path dir = null;
        for (int i = 0; i < args.size(); i++) {
            if (args.get(i).equals("--device")) device = args.get(++i);
            else dir = Path.of(args.get(i));
        }
        if (dir == null) {
            System.out.println("usage: sipu model DIR [--device sipu|cpu|all]");
            return 2;
        }
        Dispatcher d = Dispatcher.standard().strict(true);
        boolean ok = true;
        for (Device dev : devices(device)) {
            for (DeepseekV3.Mode mode : DeepseekV3.Mode.values()) {
                try {
                    ModelCheck.Result r = ModelCheck.check(dir, mode, d, dev);
                    System.out.println(r);
                    ok &= r.pass();
                } catch (Exception e) {
                    System.out.println(mode.name().toLowerCase() + " on " + dev + ": " + e + "  FAIL");
                    ok = false;
                }
            }
        }
        return ok ? 0 : 1;
    }

    static Path defaultSuite() {
        String p = System.getProperty("sipu.conformance.dir");
        return Path.of(p != null ? p : "../shared/conformance/torch-2.11");
    }

    static void coverage(Dispatcher d, PrintStream out) {
        OpRegistry r = d.registry();
        int w = d.table().all().stream().mapToInt(s -> s.name().length()).max().orElse(10);
        String group = null;
        int[] sipuNative = new int[1], missing = new int[2];
        out.printf("%-" + w + "s  %-14s %-10s%n", "op", "sipu", "cpu");
        for (OpSchema s : d.table().all()) {
            String g = d.table().group(s.name());
            if (!g.equals(group)) {
                out.println("-- " + g);
                group = g;
            }
            String sipu = r.has(s.name(), DispatchKey.SIPU) ? "SIPU native"
                    : r.has(s.name(), DispatchKey.COMPOSITE) ? "composite"
                    : r.has(s.name(), DispatchKey.CPU) ? "CPU fallback" : "missing";
            String cpu = r.has(s.name(), DispatchKey.CPU) ? "CPU" : r.has(s.name(), DispatchKey.COMPOSITE) ? "composite" : "missing";
            if (sipu.equals("SIPU native")) sipuNative[0]++;
            if (sipu.equals("missing") || sipu.equals("CPU fallback")) missing[0]++;
            if (cpu.equals("missing")) missing[1]++;
            out.printf("%-" + w + "s  %-14s %-10s%n", s.name(), sipu, cpu);
        }
        out.printf("%d ops: %d SIPU native, %d without a SIPU kernel or decomposition, %d missing on CPU%n",
                d.table().all().size(), sipuNative[0], missing[0], missing[1]);
    }
}
