package dev.sipu.bench;

import org.openjdk.jmh.results.RunResult;
import org.openjdk.jmh.runner.Runner;
import org.openjdk.jmh.runner.RunnerException;
import org.openjdk.jmh.runner.options.ChainedOptionsBuilder;
import org.openjdk.jmh.runner.options.OptionsBuilder;
import org.openjdk.jmh.runner.options.TimeValue;

import java.util.Collection;
import java.util.HashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.regex.Pattern;

/**
 * {@code ./sipu bench [--quick] [--tsv] [FILTER]}: runs {@link OpBenchmark} for the rows whose name
 * matches FILTER (a regular expression, found anywhere) on sipu, cpu and libtorch, with the same
 * thread count, and prints one line per row: op, shape, dtype, the three times, SIPU's speedup over
 * libtorch, and SIPU's achieved GFLOP/s or GB/s. {@code --quick} is a smoke test (tiny warm-up and
 * measurement, no fork): its times are not measurements.
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
        String[] rows = Rows.names().stream().filter(n -> p.matcher(n).find()).toArray(String[]::new);
        if (rows.length == 0) {
            System.err.println("no row matches '" + filter + "'; rows: " + Rows.names());
            System.exit(2);
        }
        int threads = Integer.getInteger("sipu.bench.threads", Runtime.getRuntime().availableProcessors());
        String[] jvm = {"--add-modules", "jdk.incubator.vector", "--enable-native-access=ALL-UNNAMED",
                "--sun-misc-unsafe-memory-access=allow", "-Dai.djl.offline=true", "-Dai.djl.pytorch.num_threads=" + threads,
                "-Dai.djl.pytorch.num_interop_threads=1", "-Dorg.slf4j.simpleLogger.defaultLogLevel=warn"};
        // JMH's own progress goes to a log file unless -v; the table is what this prints
        String log = verbose ? null : System.getProperty("java.io.tmpdir") + "/sipu-bench-jmh.log";
        ChainedOptionsBuilder o = new OptionsBuilder().include(OpBenchmark.class.getName()).param("row", rows)
                .jvmArgsAppend(jvm).shouldFailOnError(true);
        if (log != null) o.output(log);
        if (quick) {
            o.forks(0).warmupIterations(1).warmupTime(TimeValue.milliseconds(50)).measurementIterations(1)
                    .measurementTime(TimeValue.milliseconds(100));
        } else {
            o.forks(1).warmupIterations(3).warmupTime(TimeValue.seconds(1)).measurementIterations(5).measurementTime(TimeValue.seconds(1));
        }
        Collection<RunResult> results = new Runner(o.build()).run();
        Map<String, Double> us = new HashMap<>();
        for (RunResult r : results) {
            us.put(r.getParams().getParam("row") + "|" + r.getParams().getParam("device"), r.getPrimaryResult().getScore());
        }
        print(rows, us, tsv, threads);
    }

    private static void print(String[] rows, Map<String, Double> us, boolean tsv, int threads) {
        List<String> head = List.of("op", "shape", "dtype", "SIPU us", "CPU us", "libtorch us", "SIPU vs libtorch", "SIPU rate", "libtorch call");
        String fmt = tsv ? null : "%-26s %-36s %-5s %11s %11s %11s %9s %13s  %s%n";
        if (tsv) System.out.println(String.join("\t", head));
        else System.out.printf(fmt, head.toArray());
        for (String name : rows) {
            Rows.Row r = Rows.ALL.get(name);
            Double s = us.get(name + "|sipu"), c = us.get(name + "|cpu"), t = r.torch() == null ? null : us.get(name + "|torch");
            String speed = s != null && t != null ? String.format(Locale.ROOT, "%.2fx", t / s) : "n/a";
            String rate = s == null ? "n/a" : r.flops() > 0 ? String.format(Locale.ROOT, "%.1f GFLOP/s", r.flops() / s / 1e3)
                    : r.bytes() > 0 ? String.format(Locale.ROOT, "%.1f GB/s", r.bytes() / s / 1e3) : "";
            String[] cells = {name, r.shape(), r.dtype(), num(s), num(c), num(t), speed, rate, r.torchHow()};
            if (tsv) System.out.println(String.join("\t", cells));
            else System.out.printf(fmt, (Object[]) cells);
        }
        System.out.println((tsv ? "# " : "") + threads + " threads on every side; times are JMH averages per call");
    }

    private static String num(Double v) {
        return v == null ? "n/a" : String.format(Locale.ROOT, "%.1f", v);
    }
}
