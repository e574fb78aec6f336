package dev.sipu.conformance;

import com.fasterxml.jackson.databind.JsonNode;
import dev.sipu.api.DType;
import dev.sipu.api.Device;
import dev.sipu.api.OpNotImplementedException;
import dev.sipu.api.Scalar;
import dev.sipu.api.SipuException;
import dev.sipu.api.Tensor;
import dev.sipu.api.schema.OpSchema;
import dev.sipu.dispatch.DispatchKey;
import dev.sipu.dispatch.Dispatcher;
import dev.sipu.dispatch.StrictFallbackException;

import java.util.ArrayList;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Runs one case on one device: fresh argument tensors on the device, one boxed call through the
 * dispatcher, then the expectations (returns, mutated arguments, aliases, or an error) checked on
 * host copies with the case's comparison mode.
 */
public final class CaseRunner {
    private static final java.util.Set<String> EXPECTATIONS = java.util.Set.of("returns", "mutated", "aliases", "error", "torch_error");

    private final Dispatcher dispatcher;

    public CaseRunner(Dispatcher dispatcher) { this.dispatcher = dispatcher; }

    public Dispatcher dispatcher() { return dispatcher; }

    /** Why {@code op} cannot run on {@code device}, or null when some kernel, decomposition or fallback serves it. */
    public String unavailable(String op, Device device) {
        if (!dispatcher.table().contains(op)) return "op not in the schema table";
        if (!dispatcher.hasDevice(device.type())) return "no " + device + " device available";
        DispatchKey key = DispatchKey.of(device);
        var r = dispatcher.registry();
        if (r.has(op, key) || r.has(op, DispatchKey.COMPOSITE)) return null;
        if (key == DispatchKey.SIPU && r.has(op, DispatchKey.CPU)) {
            return dispatcher.isStrict() ? "no SIPU kernel (strict mode forbids the CPU fallback)" : null;
        }
        return "not implemented for " + device;
    }

    public Outcome run(Case c, Device device) {
        String why = unavailable(c.op(), device);
        if (why != null) return Outcome.skipped(why);
        if (!Compare.MODES.contains(c.compare())) {
            // Comparing by some other rule than the case asks for could pass what should fail.
            return Outcome.skipped("compare mode '" + c.compare() + "' is not one of FORMAT.md's " + Compare.MODES);
        }
        for (Iterator<String> it = c.expect().fieldNames(); it.hasNext(); ) {
            String f = it.next();
            // An expectation the runner does not check could pass what should fail.
            if (!EXPECTATIONS.contains(f)) return Outcome.skipped("unknown expectation '" + f + "' (FORMAT.md has " + EXPECTATIONS + ")");
        }
        OpSchema schema = dispatcher.table().get(c.op());
        // A call this library's schema cannot even bind (a newer signature's extra arguments) cannot run
        // here; the binding error must not count as the library rejecting a bad input.
        if (c.args().size() > schema.arguments().size()) {
            return Outcome.skipped(c.args().size() + " positional arguments for the " + schema.arguments().size() + "-argument schema of " + c.op());
        }
        for (String k : c.kwargs().keySet()) {
            if (schema.indexOf(k) < 0) return Outcome.skipped("keyword '" + k + "' is not an argument of this library's " + c.op());
        }
        try (Arguments a = new Arguments(dispatcher, device, c.file())) {
            Object[] args = new Object[c.args().size()];
            for (int i = 0; i < args.length; i++) args[i] = a.decode(c.args().get(i));
            Map<String, Object> kwargs = new LinkedHashMap<>();
            c.kwargs().forEach((k, v) -> kwargs.put(k, a.decode(v)));
            Object result;
            try {
                result = dispatcher.call(c.op(), args, kwargs);
            } catch (OpNotImplementedException | StrictFallbackException e) {
                return Outcome.skipped(e.getMessage());
            } catch (SipuException e) {
                return c.expectsError() ? Outcome.passed() : Outcome.failed("unexpected error: " + e.getMessage());
            } catch (RuntimeException | Error e) {
                return Outcome.failed((c.expectsError() ? "expected a library exception, got " : "crashed with ") + e);
            }
            a.own(result);
            if (c.expectsError()) return Outcome.failed("expected an error, but the call returned " + describe(result));
            String problem = new Checker(c, schema, a, args, kwargs, result).check();
            return problem == null ? Outcome.passed() : Outcome.failed(problem);
        } catch (Arguments.Undecodable e) {
            return Outcome.skipped("cannot decode the case: " + e.getMessage());
        } catch (SipuException | IllegalArgumentException | IllegalStateException e) {
            return Outcome.failed("could not set the case up: " + e.getMessage());
        }
    }

    private static String describe(Object o) {
        return o instanceof Tensor t ? t.toString() : String.valueOf(o);
    }

    /** The expectations of one finished call. */
    private static final class Checker {
        private final Case c;
        private final OpSchema schema;
        private final Arguments a;
        private final Object[] args;
        private final Map<String, Object> kwargs;
        private final Object result;

        Checker(Case c, OpSchema schema, Arguments a, Object[] args, Map<String, Object> kwargs, Object result) {
            this.c = c;
            this.schema = schema;
            this.a = a;
            this.args = args;
            this.kwargs = kwargs;
            this.result = result;
        }

        String check() {
            JsonNode e = c.expect();
            String m = null;
            if (e.has("returns")) m = returns(e.get("returns"));
            if (m == null && e.has("mutated")) m = mutated(e.get("mutated"));
            if (m == null && e.has("aliases")) m = aliases(e.get("aliases"));
            return m;
        }

        /** The schema position of a mutated key (an index or a name). */
        private int position(String key) {
            if (!key.isEmpty() && key.chars().allMatch(Character::isDigit)) return Integer.parseInt(key);
            int i = schema.indexOf(key);
            return i < 0 ? Integer.MAX_VALUE : i;
        }

        /** A mutated/aliases key: an argument index, or a schema name (given by keyword or positionally). */
        private Object argument(String key) {
            if (!key.isEmpty() && key.chars().allMatch(Character::isDigit)) {
                int i = Integer.parseInt(key);
                if (i < args.length) return args[i];
                return i < schema.arguments().size() ? kwargs.get(schema.arguments().get(i).name()) : null;
            }
            if (kwargs.containsKey(key)) return kwargs.get(key);
            int i = schema.indexOf(key);
            return i >= 0 && i < args.length ? args[i] : null;
        }

        /** The bound value of a schema argument (positional, keyword or default). */
        private Object bound(String name) {
            Object[] b = schema.bind(args, kwargs);
            int i = schema.indexOf(name);
            return i < 0 ? null : b[i];
        }

        private String returns(JsonNode expected) {
            String mode = c.compare();
            switch (mode) {
                case "sort", "topk" -> {
                    List<?> r = Compare.asList(result);
                    List<?> x = (List<?>) a.decode(expected);
                    if (r == null || r.size() != 2) return "returns: expected (values, indices), got " + describe(result);
                    return indexed("returns", a.toHost((Tensor) r.get(0)), a.toHost((Tensor) r.get(1)), (Tensor) x.get(0), (Tensor) x.get(1));
                }
                case "topk_routing" -> {
                    List<?> r = Compare.asList(result);
                    List<?> x = (List<?>) a.decode(expected);
                    if (r == null || r.size() != 2) return "returns: expected (weights, ids), got " + describe(result);
                    return Compare.routing("returns", a.toHost((Tensor) r.get(0)), a.toHost((Tensor) r.get(1)),
                            (Tensor) x.get(0), (Tensor) x.get(1), c.tol());
                }
                default -> {
                    return value("returns", result, a.decode(expected));
                }
            }
        }

        private String mutated(JsonNode expected) {
            String mode = c.compare();
            Map<String, Tensor> actual = new LinkedHashMap<>();
            Map<String, Tensor> want = new LinkedHashMap<>();
            for (Iterator<Map.Entry<String, JsonNode>> it = expected.fields(); it.hasNext(); ) {
                Map.Entry<String, JsonNode> f = it.next();
                Object arg = argument(f.getKey());
                if (!(arg instanceof Tensor t)) return "mutated[" + f.getKey() + "]: argument is not a tensor";
                actual.put(f.getKey(), a.toHost(t));
                want.put(f.getKey(), (Tensor) a.decode(f.getValue()));
            }
            List<String> keys = new ArrayList<>(actual.keySet());
            // (weights, ids[, token_expert_indices]) in schema order, whatever the order of the JSON keys
            keys.sort(java.util.Comparator.comparingInt(this::position));
            if (mode.equals("topk_routing")) {
                String m = Compare.routing("mutated", actual.get(keys.get(0)), actual.get(keys.get(1)),
                        want.get(keys.get(0)), want.get(keys.get(1)), c.tol());
                for (int i = 2; m == null && i < keys.size(); i++) {
                    m = Compare.exact("mutated[" + keys.get(i) + "]", actual.get(keys.get(i)), want.get(keys.get(i)));
                }
                return m;
            }
            if (mode.equals("moe_align")) {
                Object bs = bound("block_size");
                String s = name(3), e = name(4), p = name(5);
                if (!actual.containsKey(s) || !actual.containsKey(e) || !actual.containsKey(p)) {
                    return "moe_align: mutated must name arguments 3, 4 and 5";
                }
                return Compare.moeAlign(actual.get(s), actual.get(e), actual.get(p), want.get(s), want.get(e), want.get(p),
                        bs instanceof Long l ? l : -1);
            }
            for (String k : keys) {
                String m = value("mutated[" + k + "]", actual.get(k), want.get(k));
                if (m != null) return m;
            }
            return null;
        }

        /** sort/topk: values close, indices pointing at them in the input (argument 0) along {@code dim}. */
        private String indexed(String what, Tensor values, Tensor indices, Tensor expValues, Tensor expIndices) {
            if (!(args.length > 0 && args[0] instanceof Tensor in)) return what + ": the input (argument 0) is not a tensor";
            Tensor input = a.toHost(in);
            Object d = bound("dim");
            int dim = dev.sipu.api.Shapes.wrapDim(c.op(), "dim", d == null ? -1 : (Long) d, input.dim());
            return Compare.indexedValues(what, values, indices, expValues, expIndices, input, dim, c.tol());
        }

        /** The mutated-map key of positional argument {@code i}: its index, or its name if given by keyword. */
        private String name(int i) {
            String n = schema.arguments().get(i).name();
            return c.expect().get("mutated").has(n) ? n : Integer.toString(i);
        }

        private String value(String what, Object actual, Object expected) {
            if (expected instanceof List<?> x) {
                List<?> r = Compare.asList(actual);
                if (r == null || r.size() != x.size()) return what + ": expected a list of " + x.size() + ", got " + describe(actual);
                for (int i = 0; i < x.size(); i++) {
                    String m = value(what + "[" + i + "]", r.get(i), x.get(i));
                    if (m != null) return m;
                }
                return null;
            }
            if (expected instanceof Tensor x) {
                if (!(actual instanceof Tensor t)) return what + ": expected a tensor, got " + describe(actual);
                Tensor h = t.device().isCpu() ? t : a.toHost(t);
                return switch (c.compare()) {
                    case "exact" -> Compare.exact(what, h, x);
                    case "meta" -> Compare.metadata(what, h, x);
                    case "meta_strides" -> Compare.strides(what, t, x, expectedStrides(x));
                    case "fp8_quant" -> Compare.fp8(what, h, x, false, c.tol());
                    case "fp8_bytes" -> Compare.fp8(what, h, x, true, c.tol());
                    case "exponential" -> {
                        String m = Compare.metadata(what, h, x);
                        Object l = bound("lambd");
                        yield m != null ? m : Compare.exponential(what, h, l instanceof Double d ? d : 1.0);
                    }
                    default -> Compare.close(what, h, x, c.tol());
                };
            }
            if (expected instanceof DType d) return d == actual ? null : what + ": got " + actual + ", expected " + d;
            if (expected instanceof Boolean b) return scalarEquals(actual, b ? 1 : 0, true) ? null : what + ": got " + actual + ", expected " + b;
            if (expected instanceof Long l && actual instanceof DType d) {
                // A ScalarType recorded as its c10::ScalarType number.
                return d.scalarTypeIndex() == l ? null : what + ": got " + d + " (ScalarType " + d.scalarTypeIndex() + "), expected ScalarType " + l;
            }
            if (expected instanceof Long l) return scalarEquals(actual, l, true) ? null : what + ": got " + actual + ", expected " + l;
            if (expected instanceof Double d) {
                return scalarEquals(actual, d, false) ? null : what + ": got " + actual + ", expected " + d;
            }
            if (expected == null) return actual == null ? null : what + ": expected nothing, got " + describe(actual);
            return what + ": cannot compare with " + expected;
        }

        /**
         * Stored tensors carry no strides, so the expected strides are those the call asked for (its
         * {@code stride} argument, as empty_strided has), else row-major.
         */
        private long[] expectedStrides(Tensor expected) {
            Object s = schema.indexOf("stride") >= 0 ? bound("stride") : null;
            return s instanceof long[] l ? l : dev.sipu.api.Shapes.contiguousStrides(expected.sizes());
        }

        private boolean scalarEquals(Object actual, double expected, boolean exact) {
            double v;
            if (actual instanceof Scalar s) v = s.toDouble();
            else if (actual instanceof Number n) v = n.doubleValue();
            else if (actual instanceof Boolean b) v = b ? 1 : 0;
            else return false;
            Case.Tolerance f32 = Compare.defaults(DType.FLOAT32), t = c.tol() != null ? c.tol().or(f32) : f32;
            return Compare.closeValue(v, expected, t, exact);
        }

        private String aliases(JsonNode expected) {
            for (Iterator<Map.Entry<String, JsonNode>> it = expected.fields(); it.hasNext(); ) {
                Map.Entry<String, JsonNode> f = it.next();
                int ri = Integer.parseInt(f.getKey());
                Object r = result instanceof List<?> l ? (ri < l.size() ? l.get(ri) : null) : (ri == 0 ? result : null);
                Object arg = argument(f.getValue().asText());
                if (!(r instanceof Tensor rt) || !(arg instanceof Tensor at)) {
                    return "aliases[" + ri + "]: no tensor to compare";
                }
                if (!rt.sharesStorageWith(at)) return "aliases[" + ri + "]: the result does not share storage with argument " + f.getValue();
            }
            return null;
        }
    }
}
