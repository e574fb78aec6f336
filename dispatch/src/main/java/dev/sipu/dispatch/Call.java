package dev.sipu.dispatch;

import dev.sipu.api.DType;
import dev.sipu.api.Device;
import dev.sipu.api.Generator;
import dev.sipu.api.MemoryFormat;
import dev.sipu.api.OpArgumentException;
import dev.sipu.api.Scalar;
import dev.sipu.api.Tensor;
import dev.sipu.api.schema.OpSchema;

import java.util.List;

/**
 * One bound call as a kernel sees it: the schema, every argument in schema order (boxed as
 * {@link dev.sipu.api.schema.ArgType} describes), the device it runs for and the dispatcher, through
 * which composite kernels call other ops.
 */
public final class Call {
    private final OpSchema schema;
    private final Object[] args;
    private final Device device;
    private final Dispatcher dispatcher;

    Call(OpSchema schema, Object[] args, Device device, Dispatcher dispatcher) {
        this.schema = schema;
        this.args = args;
        this.device = device;
        this.dispatcher = dispatcher;
    }

    public String op() { return schema.name(); }
    public OpSchema schema() { return schema; }
    public Device device() { return device; }
    public Dispatcher dispatcher() { return dispatcher; }
    public Ops ops() { return dispatcher.ops(); }
    public int size() { return args.length; }
    public Object arg(int i) { return args[i]; }
    public String name(int i) { return schema.arguments().get(i).name(); }

    public Tensor tensor(int i) {
        Object v = args[i];
        if (v == null) throw error(i, "must not be None");
        return (Tensor) v;
    }

    public Tensor optTensor(int i) { return (Tensor) args[i]; }

    @SuppressWarnings("unchecked")
    public List<Tensor> tensors(int i) { return (List<Tensor>) args[i]; }

    public long i64(int i) {
        Object v = args[i];
        if (v == null) throw error(i, "must not be None");
        return (Long) v;
    }

    public Long optI64(int i) { return (Long) args[i]; }

    public double f64(int i) {
        Object v = args[i];
        if (v == null) throw error(i, "must not be None");
        return (Double) v;
    }

    public Double optF64(int i) { return (Double) args[i]; }

    public boolean bool(int i) {
        Object v = args[i];
        return v != null && (Boolean) v;
    }

    public Boolean optBool(int i) { return (Boolean) args[i]; }

    public Scalar scalar(int i) {
        Object v = args[i];
        if (v == null) throw error(i, "must not be None");
        return (Scalar) v;
    }

    public Scalar optScalar(int i) { return (Scalar) args[i]; }

    public long[] ints(int i) { return (long[]) args[i]; }

    public DType dtype(int i) { return (DType) args[i]; }

    public String str(int i) { return (String) args[i]; }

    public Device deviceArg(int i) { return (Device) args[i]; }

    public MemoryFormat memoryFormat(int i) { return (MemoryFormat) args[i]; }

    public Generator generator(int i) { return (Generator) args[i]; }

    /** The library's exception for argument {@code i}, naming the op and the argument. */
    public OpArgumentException error(int i, String problem) {
        return new OpArgumentException(op(), name(i), problem);
    }

    /** Checks a condition on argument {@code i}. */
    public void check(boolean ok, int i, String problem) {
        if (!ok) throw error(i, problem);
    }

    Object[] rawArgs() { return args; }
}
