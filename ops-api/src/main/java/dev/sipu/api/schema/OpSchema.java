package dev.sipu.api.schema;

import dev.sipu.api.DType;
import dev.sipu.api.Device;
import dev.sipu.api.Generator;
import dev.sipu.api.Layout;
import dev.sipu.api.MemoryFormat;
import dev.sipu.api.OpArgumentException;
import dev.sipu.api.Scalar;
import dev.sipu.api.Tensor;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;

/**
 * A parsed op schema ({@code aten::add.Tensor(Tensor self, Tensor other, *, Scalar alpha=1) -> Tensor}).
 * {@link #bind} turns a boxed call's positional and keyword arguments into the full argument array
 * kernels see: defaults filled in, every value in the Java form of its {@link ArgType}.
 */
public record OpSchema(String name, List<Argument> arguments, List<Return> returns, boolean composite, String text) {

    public OpSchema {
        arguments = List.copyOf(arguments);
        returns = List.copyOf(returns);
    }

    /** {@code aten::add} of {@code aten::add.Tensor}. */
    public String baseName() {
        int dot = name.indexOf('.', name.indexOf("::") + 2);
        return dot < 0 ? name : name.substring(0, dot);
    }

    public int indexOf(String argName) {
        for (int i = 0; i < arguments.size(); i++) if (arguments.get(i).name().equals(argName)) return i;
        return -1;
    }

    /** Indices of the arguments the op writes into. */
    public int[] writtenArguments() {
        return java.util.stream.IntStream.range(0, arguments.size())
                .filter(i -> arguments.get(i).written()).toArray();
    }

    /** Binds positional and keyword arguments to the schema and converts each to its boxed form. */
    public Object[] bind(Object[] positional, Map<String, ?> kwargs) {
        int n = arguments.size();
        if (positional.length > n) {
            throw new OpArgumentException(name, "*", "takes at most " + n + " arguments, got " + positional.length);
        }
        Object[] out = new Object[n];
        boolean[] set = new boolean[n];
        for (int i = 0; i < positional.length; i++) {
            Argument a = arguments.get(i);
            if (a.kwargOnly()) {
                throw new OpArgumentException(name, a.name(), "is keyword-only but was given positionally");
            }
            out[i] = convert(a, positional[i]);
            set[i] = true;
        }
        if (kwargs != null) {
            for (Map.Entry<String, ?> e : kwargs.entrySet()) {
                int i = indexOf(e.getKey());
                if (i < 0) throw new OpArgumentException(name, e.getKey(), "no such argument in " + text);
                if (set[i]) throw new OpArgumentException(name, e.getKey(), "given twice");
                out[i] = convert(arguments.get(i), e.getValue());
                set[i] = true;
            }
        }
        for (int i = 0; i < n; i++) {
            if (set[i]) continue;
            Argument a = arguments.get(i);
            if (a.hasDefault()) out[i] = copyDefault(a.defaultValue());
            else if (a.optional() && a.kwargOnly()) out[i] = null; // "bool? stable" with no default
            else throw new OpArgumentException(name, a.name(), "missing required argument");
        }
        return out;
    }

    private static Object copyDefault(Object v) {
        if (v instanceof long[] l) return l.clone();
        if (v instanceof double[] d) return d.clone();
        if (v instanceof boolean[] b) return b.clone();
        return v;
    }

    private Object convert(Argument a, Object v) {
        if (v == null) {
            if (a.optional()) return null;
            throw new OpArgumentException(name, a.name(), "must not be None (type " + a.type() + ")");
        }
        Object c = switch (a.type()) {
            case TENSOR -> v instanceof Tensor ? v : null;
            case TENSOR_LIST, OPTIONAL_TENSOR_LIST -> tensorList(a, v);
            case INT -> v instanceof Long || v instanceof Integer || v instanceof Short || v instanceof Byte
                    ? Long.valueOf(((Number) v).longValue())
                    : v instanceof Scalar.Int s ? Long.valueOf(s.value()) : null;
            case INT_LIST -> intList(a, v);
            case FLOAT -> v instanceof Number num ? Double.valueOf(num.doubleValue())
                    : v instanceof Scalar s && !s.isBool() ? Double.valueOf(s.toDouble()) : null;
            case FLOAT_LIST -> v instanceof double[] d ? d.clone() : null;
            case BOOL -> v instanceof Boolean ? v : v instanceof Scalar.Bool s ? Boolean.valueOf(s.value()) : null;
            case BOOL_LIST -> v instanceof boolean[] b ? b.clone() : null;
            case SCALAR -> toScalar(v);
            case SCALAR_TYPE -> v instanceof DType ? v : v instanceof String s ? DType.parse(s) : null;
            case STR -> v instanceof String ? v : null;
            case DEVICE -> v instanceof Device ? v : v instanceof String s ? Device.parse(s) : null;
            case LAYOUT -> v instanceof Layout ? v : null;
            case MEMORY_FORMAT -> v instanceof MemoryFormat ? v : null;
            case GENERATOR -> v instanceof Generator ? v : null;
        };
        if (c == null) {
            throw new OpArgumentException(name, a.name(), "expected " + a.type() + " but got "
                    + v.getClass().getSimpleName());
        }
        return c;
    }

    private static Scalar toScalar(Object v) {
        if (v instanceof Scalar s) return s;
        if (v instanceof Boolean b) return Scalar.of(b);
        if (v instanceof Double || v instanceof Float) return Scalar.of(((Number) v).doubleValue());
        if (v instanceof Number n) return Scalar.of(n.longValue());
        return null;
    }

    private Object intList(Argument a, Object v) {
        if (v instanceof long[] l) return l.clone();
        if (v instanceof int[] i) return Arrays.stream(i).asLongStream().toArray();
        if (v instanceof Number num && a.fixedLength() > 0) {
            long[] out = new long[a.fixedLength()];
            Arrays.fill(out, num.longValue());
            return out;
        }
        if (v instanceof List<?> list) {
            long[] out = new long[list.size()];
            for (int i = 0; i < out.length; i++) {
                if (!(list.get(i) instanceof Number num)) return null;
                out[i] = num.longValue();
            }
            return out;
        }
        return null;
    }

    private Object tensorList(Argument a, Object v) {
        List<?> in = v instanceof List<?> l ? l : v instanceof Tensor[] arr ? Arrays.asList(arr) : null;
        if (in == null) return null;
        List<Tensor> out = new ArrayList<>(in.size());
        for (Object o : in) {
            if (o == null && a.type() == ArgType.OPTIONAL_TENSOR_LIST) out.add(null);
            else if (o instanceof Tensor t) out.add(t);
            else throw new OpArgumentException(name, a.name(), "list element is not a tensor: " + o);
        }
        return java.util.Collections.unmodifiableList(out);
    }

    @Override
    public String toString() { return text; }
}
