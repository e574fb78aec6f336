package dev.sipu.api.schema;

import dev.sipu.api.DType;
import dev.sipu.api.MemoryFormat;
import dev.sipu.api.Scalar;

import java.util.ArrayList;
import java.util.List;

/** Parses PyTorch's schema language, the form of native_functions.yaml and of vLLM's op registrations. */
public final class SchemaParser {
    private SchemaParser() {}

    /** Parses {@code ns::name.overload(ARGS) -> RETURNS}, with an optional trailing {@code | composite}. */
    public static OpSchema parse(String line) {
        String text = line.strip();
        boolean composite = false;
        int bar = text.lastIndexOf(" | ");
        if (bar > 0 && text.substring(bar + 3).strip().equals("composite")) {
            composite = true;
            text = text.substring(0, bar).strip();
        }
        int open = text.indexOf('(');
        int close = matching(text, open);
        int arrow = text.indexOf("->", close);
        if (open <= 0 || close < 0 || arrow < 0) throw new IllegalArgumentException("malformed schema: " + line);
        String name = text.substring(0, open).strip();
        if (!name.contains("::")) name = "aten::" + name;
        List<Argument> args = new ArrayList<>();
        boolean kwOnly = false;
        for (String part : splitTop(text.substring(open + 1, close))) {
            if (part.equals("*")) { kwOnly = true; continue; }
            args.add(argument(part, kwOnly, line));
        }
        List<Return> rets = returns(text.substring(arrow + 2).strip(), line);
        return new OpSchema(name, args, rets, composite, text);
    }

    private static int matching(String s, int open) {
        if (open < 0) return -1;
        int depth = 0;
        for (int i = open; i < s.length(); i++) {
            char c = s.charAt(i);
            if (c == '(') depth++;
            else if (c == ')' && --depth == 0) return i;
        }
        return -1;
    }

    /** Splits on commas outside brackets, parentheses and quotes. */
    private static List<String> splitTop(String s) {
        List<String> parts = new ArrayList<>();
        int depth = 0, start = 0;
        boolean quoted = false;
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            if (c == '"') quoted = !quoted;
            else if (!quoted && (c == '(' || c == '[')) depth++;
            else if (!quoted && (c == ')' || c == ']')) depth--;
            else if (!quoted && c == ',' && depth == 0) {
                parts.add(s.substring(start, i).strip());
                start = i + 1;
            }
        }
        String last = s.substring(start).strip();
        if (!last.isEmpty()) parts.add(last);
        return parts;
    }

    /** A type with its annotations removed: base name, optional, written, alias set, list length. */
    private record TypeSpec(String base, boolean optional, boolean written, String alias, int fixedLength) {}

    private static TypeSpec type(String t) {
        String alias = null;
        boolean written = false;
        int p = t.indexOf('(');
        if (p >= 0) {
            int q = t.indexOf(')', p);
            String ann = t.substring(p + 1, q).strip();
            written = ann.contains("!");
            alias = ann.replace("!", "").split("->")[0].strip();
            t = t.substring(0, p) + t.substring(q + 1);
        }
        if (t.contains("!")) { written = true; t = t.replace("!", ""); }
        int fixed = 0;
        java.util.regex.Matcher m = java.util.regex.Pattern.compile("\\[(\\d+)]").matcher(t);
        if (m.find()) { fixed = Integer.parseInt(m.group(1)); t = m.replaceFirst("[]"); }
        boolean optional = t.endsWith("?");
        if (optional) t = t.substring(0, t.length() - 1);
        return new TypeSpec(t, optional, written, alias, fixed);
    }

    private static Argument argument(String decl, boolean kwOnly, String line) {
        String d = decl;
        String dflt = null;
        int eq = d.indexOf('=');
        if (eq >= 0) { dflt = d.substring(eq + 1).strip(); d = d.substring(0, eq).strip(); }
        int sp = d.lastIndexOf(' ');
        if (sp < 0) throw new IllegalArgumentException("argument without a name '" + decl + "' in " + line);
        TypeSpec ts = type(d.substring(0, sp).strip());
        ArgType at = ArgType.parse(ts.base());
        String name = d.substring(sp + 1).strip();
        Object value = dflt == null ? null : defaultValue(at, dflt, line);
        return new Argument(name, at, ts.optional(), ts.written(), kwOnly, dflt != null, value, ts.fixedLength());
    }

    private static Object defaultValue(ArgType t, String v, String line) {
        if (v.equals("None")) return null;
        try {
            return switch (t) {
                case INT -> Long.parseLong(v);
                case FLOAT -> Double.parseDouble(v);
                case BOOL -> Boolean.parseBoolean(v.toLowerCase(java.util.Locale.ROOT));
                case SCALAR -> v.contains(".") || v.contains("e") ? Scalar.of(Double.parseDouble(v))
                        : v.equals("True") || v.equals("False") ? Scalar.of(v.equals("True")) : Scalar.of(Long.parseLong(v));
                case INT_LIST -> parseInts(v);
                case STR -> v.substring(1, v.length() - 1);
                case SCALAR_TYPE -> DType.parse(v);
                case MEMORY_FORMAT -> MemoryFormat.parse(v);
                default -> throw new IllegalArgumentException("no default supported for " + t);
            };
        } catch (RuntimeException e) {
            throw new IllegalArgumentException("bad default '" + v + "' in " + line, e);
        }
    }

    private static long[] parseInts(String v) {
        String body = v.substring(1, v.length() - 1).strip();
        if (body.isEmpty()) return new long[0];
        return java.util.Arrays.stream(body.split(",")).map(String::strip).mapToLong(Long::parseLong).toArray();
    }

    private static List<Return> returns(String r, String line) {
        List<Return> out = new ArrayList<>();
        if (r.equals("()")) return out;
        List<String> parts = r.startsWith("(") && r.endsWith(")") && !r.startsWith("(Tensor(")
                ? splitTop(r.substring(1, r.length() - 1)) : List.of(r);
        for (String p : parts) {
            String tpart = p, name = null;
            int sp = p.lastIndexOf(' ');
            if (sp > 0 && !p.substring(sp + 1).contains(")") && !p.substring(sp + 1).contains("[")) {
                tpart = p.substring(0, sp);
                name = p.substring(sp + 1);
            }
            TypeSpec ts = type(tpart.strip());
            out.add(new Return(name, ArgType.parse(ts.base()), ts.alias(), ts.written()));
        }
        return out;
    }
}
