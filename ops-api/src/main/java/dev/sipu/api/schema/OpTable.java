package dev.sipu.api.schema;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.util.Collection;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * The table of every op the library knows, read once from {@code schemas.txt}, the single place an
 * op's schema is written. Immutable and shared.
 */
public final class OpTable {

    private static final OpTable STANDARD = load();

    private final Map<String, OpSchema> schemas;
    private final Map<String, String> groups;

    private OpTable(Map<String, OpSchema> schemas, Map<String, String> groups) {
        this.schemas = Collections.unmodifiableMap(schemas);
        this.groups = Collections.unmodifiableMap(groups);
    }

    public static OpTable standard() { return STANDARD; }

    public OpSchema get(String op) { return schemas.get(op); }

    public boolean contains(String op) { return schemas.containsKey(op); }

    public Collection<OpSchema> all() { return schemas.values(); }

    /** The heading ({@code ## views (no copy)}) an op is listed under. */
    public String group(String op) { return groups.get(op); }

    private static OpTable load() {
        Map<String, OpSchema> m = new LinkedHashMap<>();
        Map<String, String> g = new LinkedHashMap<>();
        try (InputStream in = OpTable.class.getResourceAsStream("/dev/sipu/api/schemas.txt")) {
            if (in == null) throw new IllegalStateException("schemas.txt missing from the ops-api jar");
            BufferedReader r = new BufferedReader(new InputStreamReader(in, StandardCharsets.UTF_8));
            String group = "";
            for (String line; (line = r.readLine()) != null; ) {
                String s = line.strip();
                if (s.startsWith("## ")) { group = s.substring(3); continue; }
                if (s.isEmpty() || s.startsWith("#")) continue;
                OpSchema schema = SchemaParser.parse(s);
                if (m.put(schema.name(), schema) != null) {
                    throw new IllegalStateException("op declared twice: " + schema.name());
                }
                g.put(schema.name(), group);
            }
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        return new OpTable(m, g);
    }
}
