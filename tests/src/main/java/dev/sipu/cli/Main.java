package dev.sipu.cli;

import ch.qos.logback.classic.Level;
import ch.qos.logback.classic.Logger;
import dev.sipu.api.Device;
import dev.sipu.api.schema.OpSchema;
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
            default -> {
                System.out.println("usage: sipu conformance DIR... [--device sipu|cpu|all] [--tsv] [--strict] [--trace]");
                System.out.println("       sipu demo [--suite DIR]");
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
        return r.failed() > 0 ? 1 : 0;
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
