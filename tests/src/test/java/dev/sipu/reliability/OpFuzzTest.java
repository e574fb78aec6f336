package dev.sipu.reliability;

import dev.sipu.api.CpuMemory;
import dev.sipu.api.DType;
import dev.sipu.api.Device;
import dev.sipu.api.Elements;
import dev.sipu.api.Layout;
import dev.sipu.api.MemoryFormat;
import dev.sipu.api.Scalar;
import dev.sipu.api.SipuException;
import dev.sipu.api.Shapes;
import dev.sipu.api.Tensor;
import dev.sipu.api.schema.Argument;
import dev.sipu.api.schema.OpSchema;
import dev.sipu.dispatch.Dispatcher;
import net.jqwik.api.ForAll;
import net.jqwik.api.Property;
import net.jqwik.api.statistics.Statistics;
import net.jqwik.api.lifecycle.AfterContainer;

import java.util.ArrayList;
import java.util.Collections;
import java.util.HashMap;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.fail;

/**
 * Calls every registered op through the boxed API with generated arguments: random shapes (empty,
 * 0-dim, broadcast, transposed and strided views), dtypes, devices (a mixed one now and then) and
 * values in and out of range (negative and huge sizes and indices, NaN and infinities, unknown
 * strings). Each call must return or raise the library's own exception: anything else, or a JVM
 * crash, fails. A call is generated from one long (jqwik reports the failing seed).
 *
 * <p>Runs {@code jqwik.tries.default} calls (junit-platform.properties: a short run for CI); the long
 * run: {@code mvn -pl tests test -Dtest=OpFuzzTest -Djqwik.tries.default=100000}.
 */
class OpFuzzTest {
    private static final Dispatcher D = Dispatcher.standard();
    private static final List<OpSchema> OPS = new ArrayList<>(D.table().all());
    private static final DType[] DTYPES = DType.values();
    private static final String[] STRINGS = {"auto", "fp8", "silu", "gelu", "", "ue8m0", "none", "bogus"};

    static {
        OPS.sort((a, b) -> a.name().compareTo(b.name()));
    }

    @Property
    void everyCallReturnsOrRaisesTheLibrarysException(@ForAll long seed) {
        SplittableRandom rnd = new SplittableRandom(seed);
        OpSchema op = OPS.get(rnd.nextInt(OPS.size()));
        Call call = new Call(rnd, op);
        try {
            call.generate();
            Object result;
            try {
                result = D.call(op.name(), call.positional.toArray(), call.kwargs);
                Statistics.label("outcome").collect("returned");
            } catch (SipuException e) {
                Statistics.label("outcome").collect("library exception");
                return;
            } catch (Throwable e) {
                fail(op.name() + " with " + call + " threw " + e, e);
                return;
            }
            call.own(result);
        } finally {
            call.close();
        }
    }

    @AfterContainer
    static void emptyCaches() {
        dev.sipu.sipu.SipuRuntime.get().allocator(Device.SIPU0).emptyCache();
    }

    /** The arguments of one call and every tensor made for it. */
    private static final class Call implements AutoCloseable {
        final SplittableRandom rnd;
        final OpSchema op;
        final List<Object> positional = new ArrayList<>();
        final Map<String, Object> kwargs = new HashMap<>();
        final Set<Tensor> made = Collections.newSetFromMap(new IdentityHashMap<>());
        final Device device;
        final long[] shape;
        final DType dtype;

        Call(SplittableRandom rnd, OpSchema op) {
            this.rnd = rnd;
            this.op = op;
            this.device = rnd.nextInt(3) == 0 ? Device.CPU : Device.SIPU0;
            int rank = rnd.nextInt(4);
            this.shape = new long[rank];
            for (int d = 0; d < rank; d++) shape[d] = rnd.nextInt(10) == 0 ? 0 : 1 + rnd.nextInt(5);
            DType[] common = {DType.FLOAT32, DType.BFLOAT16, DType.FLOAT16, DType.INT64, DType.INT32, DType.BOOL, DType.FLOAT8_E4M3FN};
            this.dtype = rnd.nextInt(4) == 0 ? DTYPES[rnd.nextInt(DTYPES.length)] : common[rnd.nextInt(common.length)];
        }

        void generate() {
            for (Argument a : op.arguments()) {
                Object v = a.optional() && rnd.nextInt(4) == 0 ? null : value(a);
                if (a.kwargOnly()) {
                    if (v != null || rnd.nextBoolean()) kwargs.put(a.name(), v);
                } else {
                    positional.add(v);
                }
            }
        }

        private Object value(Argument a) {
            return switch (a.type()) {
                case TENSOR -> tensor();
                case TENSOR_LIST, OPTIONAL_TENSOR_LIST -> {
                    List<Tensor> l = new ArrayList<>();
                    int n = rnd.nextInt(4);
                    for (int i = 0; i < n; i++) l.add(a.type() == dev.sipu.api.schema.ArgType.OPTIONAL_TENSOR_LIST && rnd.nextInt(3) == 0 ? null : tensor());
                    yield l;
                }
                case INT -> anInt();
                case INT_LIST -> {
                    long[] l = new long[rnd.nextInt(4)];
                    for (int i = 0; i < l.length; i++) l[i] = anInt();
                    yield l;
                }
                case FLOAT -> aDouble();
                case FLOAT_LIST -> new double[] {aDouble(), aDouble()};
                case BOOL -> rnd.nextBoolean();
                case BOOL_LIST -> new boolean[] {rnd.nextBoolean(), rnd.nextBoolean()};
                case SCALAR -> switch (rnd.nextInt(3)) {
                    case 0 -> Scalar.of(anInt());
                    case 1 -> Scalar.of(aDouble());
                    default -> Scalar.of(rnd.nextBoolean());
                };
                case SCALAR_TYPE -> DTYPES[rnd.nextInt(DTYPES.length)];
                case STR -> STRINGS[rnd.nextInt(STRINGS.length)];
                case DEVICE -> new Device[] {Device.CPU, Device.SIPU0, Device.sipu(3)}[rnd.nextInt(3)];
                case LAYOUT -> Layout.values()[rnd.nextInt(Layout.values().length)];
                case MEMORY_FORMAT -> MemoryFormat.values()[rnd.nextInt(MemoryFormat.values().length)];
                case GENERATOR -> null;
            };
        }

        private long anInt() {
            return switch (rnd.nextInt(10)) {
                case 0 -> new long[] {Long.MAX_VALUE, Long.MIN_VALUE, 1L << 40, -(1L << 40), 1L << 62}[rnd.nextInt(5)];
                case 1, 2 -> shape.length == 0 ? 0 : shape[rnd.nextInt(shape.length)];
                default -> rnd.nextInt(-3, 7);
            };
        }

        private double aDouble() {
            double[] special = {Double.NaN, Double.POSITIVE_INFINITY, Double.NEGATIVE_INFINITY, 1e300, -0.0, 1e-6};
            return rnd.nextInt(5) == 0 ? special[rnd.nextInt(special.length)] : rnd.nextDouble(-3, 3);
        }

        /** Mostly the call's shape and dtype (so ops get past their first checks), sometimes anything. */
        private Tensor tensor() {
            long[] s = shape.clone();
            switch (rnd.nextInt(6)) {
                case 0 -> {  // broadcastable: a leading dim dropped or a dim of 1
                    if (s.length > 0 && rnd.nextBoolean()) s = java.util.Arrays.copyOfRange(s, 1, s.length);
                    else if (s.length > 0) s[rnd.nextInt(s.length)] = 1;
                }
                case 1 -> {
                    s = new long[rnd.nextInt(5)];
                    for (int d = 0; d < s.length; d++) s[d] = rnd.nextInt(7);
                }
                default -> { }
            }
            DType t = rnd.nextInt(4) == 0 ? DTYPES[rnd.nextInt(DTYPES.length)] : dtype;
            Device dev = rnd.nextInt(25) == 0 ? (device.isCpu() ? Device.SIPU0 : Device.CPU) : device;
            boolean transposed = s.length >= 2 && rnd.nextInt(5) == 0;
            long[] alloc = s.clone();
            if (transposed) {
                long x = alloc[s.length - 1];
                alloc[s.length - 1] = alloc[s.length - 2];
                alloc[s.length - 2] = x;
            }
            Tensor host = Tensor.adopt(CpuMemory.allocate(Math.max(1, Shapes.numel(alloc)) * t.itemSize()), t, alloc);
            made.add(host);
            for (long i = 0; i < host.numel(); i++) {
                long at = i * t.itemSize();
                if (t.isFloatingPoint()) {
                    double v = rnd.nextInt(30) == 0 ? Double.NaN : rnd.nextInt(30) == 0 ? Double.POSITIVE_INFINITY : rnd.nextGaussian() * 2;
                    Elements.putDouble(host.data(), at, t, t.isFloat8() ? Math.max(-400, Math.min(400, v)) : v);
                } else {
                    Elements.putLong(host.data(), at, t, rnd.nextInt(-3, 9));
                }
            }
            Tensor v = host;
            if (transposed) {
                long[] st = host.strides();
                long[] vs = st.clone();
                vs[s.length - 1] = st[s.length - 2];
                vs[s.length - 2] = st[s.length - 1];
                v = host.asStrided(s, vs, 0);
                made.add(v);
            }
            if (dev.isSipu()) {
                v = D.to(v, dev);
                made.add(v);
            }
            return v;
        }

        void own(Object result) {
            if (result instanceof Tensor t) made.add(t);
            else if (result instanceof List<?> l) for (Object o : l) own(o);
        }

        @Override
        public void close() {
            for (Tensor t : made) t.close();
        }

        @Override
        public String toString() {
            return "args " + describe(positional) + " kwargs " + kwargs.keySet() + " on " + device;
        }

        private static String describe(List<Object> args) {
            List<String> s = new ArrayList<>();
            for (Object o : args) {
                if (o instanceof long[] l) s.add(java.util.Arrays.toString(l));
                else if (o instanceof double[] l) s.add(java.util.Arrays.toString(l));
                else s.add(String.valueOf(o));
            }
            return s.toString();
        }
    }
}
