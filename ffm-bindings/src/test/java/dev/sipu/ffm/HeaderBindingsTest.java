package dev.sipu.ffm;

import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.lang.reflect.Method;
import java.lang.reflect.Modifier;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

/**
 * Fails when kernels-c's public header and the committed jextract bindings disagree: a function
 * without a binding, a binding without a function, or a different signature. Regenerate the
 * bindings with the command in ffm-bindings/README.md.
 */
class HeaderBindingsTest {

    static final Path HEADER = Path.of(System.getProperty("sipu.header",
            "../kernels-c/include/sipu_kernels.h"));
    static final String BINDINGS = "dev.sipu.ffm.gen.SipuKernels";

    /** A C prototype as the Java types FFM carries its return value and parameters in. */
    record Signature(Class<?> ret, List<Class<?>> params) {
        @Override public String toString() {
            return ret.getSimpleName() + params.stream().map(Class::getSimpleName).toList();
        }
    }

    static Map<String, Signature> headerFunctions() throws IOException {
        String src = Files.readString(HEADER)
                .replaceAll("(?s)/\\*.*?\\*/", " ")
                .replaceAll("//[^\n]*", " ")
                .replaceAll("(?m)^\\s*#.*$", " ");
        Map<String, Signature> out = new TreeMap<>();
        Matcher m = Pattern.compile("([A-Za-z_][\\w\\s\\*]*?)\\b(sipu_\\w+)\\s*\\(([^)]*)\\)\\s*;").matcher(src);
        while (m.find()) {
            String ret = m.group(1).strip();
            if (ret.contains("typedef") || ret.contains("}")) continue;
            List<Class<?>> params = new ArrayList<>();
            String plist = m.group(3).strip();
            if (!plist.isEmpty() && !plist.equals("void")) {
                for (String p : plist.split(",")) params.add(carrier(p.strip().replaceAll("\\s*\\b\\w+$", "")
                        .replaceAll("\\s*\\*\\s*\\w+$", " *"), p));
            }
            out.put(m.group(2), new Signature(carrier(ret, ret), params));
        }
        return out;
    }

    static Class<?> carrier(String type, String context) {
        String t = type.replace("const", "").strip();
        if (t.contains("*")) return MemorySegment.class;
        return switch (t.replaceAll("\\s+", " ")) {
            case "void" -> void.class;
            case "int32_t", "int", "sipu_status", "unsigned int", "uint32_t" -> int.class;
            case "int64_t", "long", "long long", "size_t", "uint64_t" -> long.class;
            case "double" -> double.class;
            case "float" -> float.class;
            case "int16_t", "short" -> short.class;
            case "int8_t", "char", "uint8_t" -> byte.class;
            default -> throw new IllegalArgumentException("type '" + type + "' of '" + context + "' has no carrier rule");
        };
    }

    static Map<String, Signature> bindingFunctions() throws ClassNotFoundException {
        Class<?> k = Class.forName(BINDINGS);
        Map<String, Signature> out = new TreeMap<>();
        for (Method method : k.getMethods()) {
            String n = method.getName();
            if (!Modifier.isStatic(method.getModifiers()) || !n.startsWith("sipu_")) continue;
            // jextract also emits accessors (..$handle, ..$address, ..$descriptor) and enum constants.
            if (n.contains("$")) continue;
            if (method.getParameterCount() == 0 && method.getReturnType() == int.class && n.equals(n.toUpperCase())) continue;
            out.put(n, new Signature(method.getReturnType(), Arrays.asList(method.getParameterTypes())));
        }
        return out;
    }

    @Test
    void everyHeaderFunctionHasABindingWithTheSameSignature() throws Exception {
        Map<String, Signature> header = headerFunctions();
        assertTrue(header.size() >= 10, "parsed too few functions from " + HEADER + ": " + header.keySet());
        Map<String, Signature> bindings = bindingFunctions();
        List<String> problems = new ArrayList<>();
        header.forEach((name, sig) -> {
            Signature b = bindings.get(name);
            if (b == null) problems.add(name + ": declared in the header, no binding");
            else if (!b.equals(sig)) problems.add(name + ": header " + sig + ", binding " + b);
        });
        bindings.keySet().stream().filter(n -> !header.containsKey(n))
                .forEach(n -> problems.add(n + ": bound, but not in the header"));
        if (!problems.isEmpty()) {
            fail("header and bindings disagree (regenerate with the jextract command in ffm-bindings/README.md):\n  "
                    + String.join("\n  ", problems));
        }
    }

    @Test
    void headerParserUnderstandsPrototypes() {
        assertEquals(MemorySegment.class, carrier("const sipu_tensor *", "x"));
        assertEquals(int.class, carrier("sipu_status", "x"));
        assertEquals(long.class, carrier("int64_t", "x"));
    }
}
