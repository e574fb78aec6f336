package dev.sipu.bench;

import dev.sipu.ffm.NativeLibrary;
import dev.sipu.ffm.gen.SipuKernels;
import org.openjdk.jmh.results.RunResult;
import org.openjdk.jmh.runner.Runner;
import org.openjdk.jmh.runner.RunnerException;
import org.openjdk.jmh.runner.options.ChainedOptionsBuilder;
import org.openjdk.jmh.runner.options.OptionsBuilder;
import org.openjdk.jmh.runner.options.TimeValue;

import java.util.ArrayList;
import java.util.Collection;
import java.util.HashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.regex.Pattern;

/**
 * {@code ./sipu bench [--quick] [--tsv] [FILTER]}: runs {@link OpBenchmark} for the rows whose name
 * matches FILTER (a regular expression, found anywhere) on sipu, cpu and libtorch, with the same
 * thread count, plus the machine limits those rows are measured against, and prints one line per row:
 * op, shape, dtype, the three times, SIPU's speedup over libtorch, SIPU's achieved rate with its
 * percentage of the measured limit, and a note (the peer's call chain, or why there is none).
 * {@code --quick} is a smoke test (tiny warm-up and measurement, no fork): its times are not measurements.
 */
public final class BenchMain {
    private BenchMain() {}

    public static void main(String[] args) throws RunnerException {
        boolean quick = false, tsv = false, verbose = false;
        String filter = ".*";
        for (String a : args) {
            switch (a) {
                case "--quick" -> quick = true;
                case "--tsv" -> tsv = true;
                case "-v", "--verbose" -> verbose = true;
                default -> filter = a;
            }
        }
        Pattern p = Pattern.compile(filter);
        Set<String> rows = new LinkedHashSet<>();
        for (Rows.Row r : Rows.ALL.values()) {
            if (!p.matcher(r.name()).find()) continue;
            // the limits a row is judged against run with it, whatever the filter says
            if (r.peak() != Rows.Peak.NONE) rows.add(Rows.FMA);
            if (r.peak() == Rows.Peak.BF16) {
                rows.add(Rows.BF16_DOT);
                rows.add(Rows.AMX);
            }
            if (r.kind() == Rows.Kind.OP && r.bytes() > 0) rows.add(Rows.triadFor(r.bytes()).name());
            rows.add(r.name());
        }
        if (rows.isEmpty()) {
            System.err.println("no row matches '" + filter + "'; rows: " + Rows.names());
            System.exit(2);
        }
        List<String> order = Rows.names();
        order.retainAll(rows);
        List<String> runs = new ArrayList<>();
        for (String name : order) for (String dev : Rows.ALL.get(name).devices()) runs.add(name + "@" + dev);

        int threads = Integer.getInteger("sipu.bench.threads", Runtime.getRuntime().availableProcessors());
        String[] jvm = {"--add-modules", "jdk.incubator.vector", "--enable-native-access=ALL-UNNAMED",
                "--sun-misc-unsafe-memory-access=allow", "-Dai.djl.offline=true", "-Dai.djl.pytorch.num_threads=" + threads,
                "-Dai.djl.pytorch.num_interop_threads=1", "-Dorg.slf4j.simpleLogger.defaultLogLevel=warn",
                "-Dsipu.models.dir=" + Rows.MODELS.toAbsolutePath(), "-Dlogback.configurationFile=logback-bench.xml"};
        // --quick runs in this JVM (no fork), which must then see the same properties as a forked one
        for (String a : jvm) {
            int eq = a.indexOf('=');
            if (a.startsWith("-D") && eq > 0 && System.getProperty(a.substring(2, eq)) == null) System.setProperty(a.substring(2, eq), a.substring(eq + 1));
        }
        // JMH's own progress goes to a log file unless -v; the table is what this prints
        String log = verbose ? null : System.getProperty("java.io.tmpdir") + "/sipu-bench-jmh.log";
        ChainedOptionsBuilder o = new OptionsBuilder().include(OpBenchmark.class.getName()).param("run", runs.toArray(String[]::new))
                .jvmArgsAppend(jvm).shouldFailOnError(true);
        if (log != null) o.output(log);
        if (quick) {
            o.forks(0).warmupIterations(1).warmupTime(TimeValue.milliseconds(50)).measurementIterations(1)
                    .measurementTime(TimeValue.milliseconds(100));
        } else {
            // about 160 cells: 2 x 0.5 s warm-up and 4 x 0.5 s measured per fork keeps the whole table near 15 minutes
            o.forks(1).warmupIterations(2).warmupTime(TimeValue.milliseconds(500)).measurementIterations(4)
                    .measurementTime(TimeValue.milliseconds(500));
        }
        Collection<RunResult> results = new Runner(o.build()).run();
        Map<String, Double> us = new HashMap<>();
        for (RunResult r : results) us.put(r.getParams().getParam("run"), r.getPrimaryResult().getScore());
        print(order, us, tsv, threads);
    }

    /** Rates per microsecond (flops or bytes) of the limit rows that ran. */
    private record Limits(Double fma, Double bf16, Double amx, Map<String, Double> triad) {
        Double triadFor(double bytes) { return triad.get(Rows.triadFor(bytes).name()); }
    }

    private static void print(List<String> order, Map<String, Double> us, boolean tsv, int threads) {
        NativeLibrary.ensureLoaded();
        // the probes' work per call, from this process's (same) ISA and thread count: rounds are linear
        double fmaFlops = SipuKernels.sipu_probe_fma_f32(1) * Rows.PROBE_ITERS, bf16Flops = SipuKernels.sipu_probe_dot_bf16(1) * Rows.PROBE_ITERS;
        double amxFlops = SipuKernels.sipu_probe_amx_bf16(1) * Rows.AMX_ITERS;
        Double fma = per(fmaFlops, us.get(Rows.FMA + "@sipu")), bf16 = per(bf16Flops, us.get(Rows.BF16_DOT + "@sipu"));
        Double amx = amxFlops > 0 ? per(amxFlops, us.get(Rows.AMX + "@sipu")) : null;
        Map<String, Double> triad = new HashMap<>();
        for (Rows.Row t : Rows.triads().values()) triad.put(t.name(), per(t.bytes(), us.get(t.name() + "@sipu")));
        Limits lim = new Limits(fma, bf16, amx, triad);

        List<String> head = List.of("op", "shape", "dtype", "SIPU us", "CPU us", "libtorch us", "SIPU vs libtorch", "SIPU rate, % of limit", "note");
        String fmt = tsv ? null : "%-28s %-46s %-5s %11s %11s %11s %8s  %-26s %s%n";
        if (tsv) System.out.println(String.join("\t", head));
        else System.out.printf(fmt, head.toArray());
        for (String name : order) {
            Rows.Row r = Rows.ALL.get(name);
            Double s = us.get(name + "@sipu"), c = us.get(name + "@cpu"), t = us.get(name + "@torch");
            String speed = s != null && t != null ? String.format(Locale.ROOT, "%.2fx", t / s) : "n/a";
            String[] cells = {name, r.shape(), r.dtype(), num(s), num(c), num(t), speed, rate(r, s, lim, fmaFlops, bf16Flops, amxFlops), r.note()};
            if (tsv) System.out.println(String.join("\t", cells));
            else System.out.printf(fmt, (Object[]) cells);
        }
        System.out.println((tsv ? "# " : "") + threads + " threads for libtorch, " + SipuKernels.sipu_get_num_threads()
                + " for the SIPU kernels (" + SipuKernels.sipu_simd_name().reinterpret(64).getString(0) + "); times are JMH averages per call");
    }

    private static Double per(double work, Double micros) { return micros == null ? null : work / micros; }

    /**
     * Achieved rate and its share of the best the machine allows the row: compute rows are held to
     * min(compute peak, triad bandwidth at the row's working set x flops per byte), a roofline with
     * measured ceilings. bf16 (and fp8, decoded to bf16) rows may use bf16 dots, AMX tiles or exact fp32
     * FMA on widened inputs, so their peak is the best of the three: what the machine allows, not what
     * the SIPU kernels happen to use.
     */
    private static String rate(Rows.Row r, Double s, Limits lim, double fmaFlops, double bf16Flops, double amxFlops) {
        if (s == null) return "n/a";
        return switch (r.kind()) {
            case LIMIT -> r.bytes() > 0 ? gbs(r.bytes() / s) + " limit"
                    : r.name().equals(Rows.AMX) && amxFlops == 0 ? "n/a: no AMX (CPU or OS)"
                    : gflops((r.name().equals(Rows.FMA) ? fmaFlops : r.name().equals(Rows.AMX) ? amxFlops : bf16Flops) / s) + " limit";
            case TOKENS -> String.format(Locale.ROOT, "%.1f tokens/s", 1e6 / s);
            case OVERHEAD -> String.format(Locale.ROOT, "%.0f ns/call", s * 1e3);
            case OP -> {
                Double bw = r.bytes() > 0 ? lim.triadFor(r.bytes()) : null;
                if (r.flops() > 0) {
                    double achieved = r.flops() / s;
                    Double peak = lim.fma();
                    String of = "FMA";
                    if (r.peak() == Rows.Peak.BF16) {
                        if (lim.bf16() != null && (peak == null || lim.bf16() > peak)) { peak = lim.bf16(); of = "bf16"; }
                        if (lim.amx() != null && (peak == null || lim.amx() > peak)) { peak = lim.amx(); of = "AMX"; }
                    }
                    Double roof = bw == null ? null : bw * r.flops() / r.bytes();
                    if (peak == null) yield gflops(achieved);
                    if (roof != null && roof < peak) yield gflops(achieved) + pct(achieved, roof) + " triad";
                    yield gflops(achieved) + pct(achieved, peak) + " " + of;
                }
                if (r.bytes() > 0) yield gbs(r.bytes() / s) + (bw == null ? "" : pct(r.bytes() / s, bw) + " triad");
                yield "";
            }
        };
    }

    private static String pct(double achieved, double limit) { return String.format(Locale.ROOT, " %.0f%%", 100 * achieved / limit); }

    private static String gflops(double perMicro) { return String.format(Locale.ROOT, "%.1f GFLOP/s", perMicro / 1e3); }

    private static String gbs(double perMicro) { return String.format(Locale.ROOT, "%.1f GB/s", perMicro / 1e3); }

    /** Microseconds, with the digits a sub-microsecond cost needs. */
    private static String num(Double v) {
        if (v == null) return "n/a";
        return String.format(Locale.ROOT, v < 1 ? "%.4f" : v < 100 ? "%.2f" : "%.1f", v);
    }
}
