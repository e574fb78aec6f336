package dev.sipu.conformance;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.sipu.api.SipuException;
import dev.sipu.api.io.SafeTensors;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;

/**
 * A folder of {@code NAME.jsonl} + {@code NAME.safetensors} pairs in the format of FORMAT.md. Any such
 * folder is accepted; nothing here knows the names of particular files or ops.
 */
public final class Suite implements AutoCloseable {
    private static final ObjectMapper JSON = new ObjectMapper();

    /** One jsonl file and its tensors. */
    public static final class File implements AutoCloseable {
        final String name;
        final SafeTensors tensors;
        final String problem;

        File(String name, SafeTensors tensors, String problem) {
            this.name = name;
            this.tensors = tensors;
            this.problem = problem;
        }

        public String name() { return name; }
        public SafeTensors tensors() { return tensors; }
        /** Why the file's tensors could not be read (its .safetensors missing or unreadable), or null. */
        public String problem() { return problem; }

        @Override public void close() { if (tensors != null) tensors.close(); }
    }

    private final Path dir;
    private final List<File> files;
    private final List<Case> cases;

    private Suite(Path dir, List<File> files, List<Case> cases) {
        this.dir = dir;
        this.files = files;
        this.cases = cases;
    }

    public Path dir() { return dir; }
    public List<Case> cases() { return cases; }

    public static Suite load(Path dir) {
        if (!Files.isDirectory(dir)) throw new SipuException("conformance suite folder not found: " + dir.toAbsolutePath());
        List<File> files = new ArrayList<>();
        List<Case> cases = new ArrayList<>();
        try (Stream<Path> s = Files.list(dir)) {
            List<Path> jsonl = s.filter(p -> p.getFileName().toString().endsWith(".jsonl")).sorted().toList();
            if (jsonl.isEmpty()) throw new SipuException("no .jsonl files in " + dir.toAbsolutePath());
            for (Path p : jsonl) {
                String name = p.getFileName().toString().replaceFirst("\\.jsonl$", "");
                Path st = dir.resolve(name + ".safetensors");
                File f = open(name, st);
                files.add(f);
                int line = 0;
                for (String text : Files.readAllLines(p)) {
                    line++;
                    if (text.isBlank()) continue;
                    cases.add(parse(JSON.readTree(text), f, p, line));
                }
            }
        } catch (IOException e) {
            files.forEach(File::close);
            throw new UncheckedIOException(e);
        }
        return new Suite(dir, files, cases);
    }

    /**
     * A file's tensors. One the reader cannot take (a dtype outside FORMAT.md's list, a damaged
     * header) makes that file's cases unrunnable (skipped), not the whole suite.
     */
    private static File open(String name, Path st) {
        if (!Files.exists(st)) return new File(name, null, "suite file " + name + " has no .safetensors");
        try {
            return new File(name, SafeTensors.open(st), null);
        } catch (IOException | RuntimeException e) {
            return new File(name, null, "cannot read " + st.getFileName() + ": " + e.getMessage());
        }
    }

    private static Case parse(JsonNode j, File f, Path p, int line) {
        String op = j.path("op").asText(null);
        if (op == null) throw new SipuException(p + ":" + line + ": case without an op");
        String id = j.path("id").asText(op + "/" + p.getFileName() + ":" + line);
        List<JsonNode> args = new ArrayList<>();
        j.path("args").forEach(args::add);
        Map<String, JsonNode> kwargs = new LinkedHashMap<>();
        for (Iterator<Map.Entry<String, JsonNode>> it = j.path("kwargs").fields(); it.hasNext(); ) {
            Map.Entry<String, JsonNode> e = it.next();
            kwargs.put(e.getKey(), e.getValue());
        }
        JsonNode tol = j.get("tol");
        Case.Tolerance t = tol == null ? null : new Case.Tolerance(tol.path("rtol").asDouble(Double.NaN), tol.path("atol").asDouble(Double.NaN));
        return new Case(id, op, args, kwargs, j.path("expect"), j.path("compare").asText("close"), t, f);
    }

    @Override
    public void close() { files.forEach(File::close); }
}
