package dev.sipu.conformance;

import dev.sipu.api.Device;

import java.io.PrintStream;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.TreeSet;

/** Counts per op and device, the failures and the skipped ops, printed as a table or TSV. */
public final class Report {
    private record Key(String op, String device) implements Comparable<Key> {
        public int compareTo(Key o) {
            int c = op.compareTo(o.op);
            return c != 0 ? c : device.compareTo(o.device);
        }
    }

    private final Map<Key, long[]> counts = new TreeMap<>();
    private final List<String> failures = new ArrayList<>();
    private final Map<String, TreeSet<String>> skippedOps = new TreeMap<>();

    public synchronized void add(Case c, Device d, Outcome o) {
        long[] n = counts.computeIfAbsent(new Key(c.op(), d.toString()), k -> new long[3]);
        n[o.status().ordinal()]++;
        switch (o.status()) {
            case FAILED -> failures.add(c.id() + " [" + d + "]: " + o.message());
            case SKIPPED -> skippedOps.computeIfAbsent(d.toString(), k -> new TreeSet<>()).add(c.op() + " (" + o.message() + ")");
            default -> { }
        }
    }

    public long passed() { return total(0); }
    public long failed() { return total(1); }
    public long skipped() { return total(2); }

    /** Totals for one device. */
    public long[] totals(String device) {
        long[] t = new long[3];
        counts.forEach((k, v) -> {
            if (k.device.equals(device)) for (int i = 0; i < 3; i++) t[i] += v[i];
        });
        return t;
    }

    private long total(int i) { return counts.values().stream().mapToLong(v -> v[i]).sum(); }

    public List<String> failures() { return failures; }

    public void print(PrintStream out, boolean tsv) {
        if (tsv) {
            out.println("op\tdevice\tpassed\tfailed\tskipped");
            counts.forEach((k, v) -> out.println(k.op + "\t" + k.device + "\t" + v[0] + "\t" + v[1] + "\t" + v[2]));
        } else {
            int w = counts.keySet().stream().mapToInt(k -> k.op.length()).max().orElse(2);
            out.printf("%-" + w + "s  %-7s %7s %7s %7s%n", "op", "device", "passed", "failed", "skipped");
            counts.forEach((k, v) -> out.printf("%-" + w + "s  %-7s %7d %7d %7d%n", k.op, k.device, v[0], v[1], v[2]));
        }
        if (!failures.isEmpty()) {
            out.println();
            out.println("failures:");
            failures.forEach(f -> out.println("  " + f));
        }
        skippedOps.forEach((d, ops) -> {
            out.println();
            out.println("skipped on " + d + " (" + ops.size() + " ops): ");
            ops.forEach(o -> out.println("  " + o));
        });
        out.println();
        out.println(closingLine());
    }

    public String closingLine() {
        return passed() + " passed, " + failed() + " failed, " + skipped() + " skipped";
    }
}
