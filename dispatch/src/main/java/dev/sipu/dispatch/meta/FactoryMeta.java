package dev.sipu.dispatch.meta;

import dev.sipu.api.DType;
import dev.sipu.api.Layout;
import dev.sipu.api.MemoryFormat;
import dev.sipu.api.Scalar;
import dev.sipu.api.Shapes;
import dev.sipu.api.Tensor;
import dev.sipu.api.TypePromotion;
import dev.sipu.dispatch.Call;

import java.util.Arrays;

/** Sizes, dtypes and layouts of the factory ops (empty, empty_strided, arange), shared by every device. */
public final class FactoryMeta {
    private FactoryMeta() {}

    /** Argument {@code arg} as tensor sizes: no negative dimension. */
    public static long[] sizes(Call c, int arg) {
        long[] s = c.ints(arg);
        for (long v : s) {
            if (v < 0) throw c.error(arg, "Trying to create tensor with negative dimension " + v + ": " + Arrays.toString(s));
        }
        return s;
    }

    /** Argument {@code arg} (a ScalarType?) or the default float when None. */
    public static DType dtypeOrDefault(Call c, int arg) {
        DType d = c.dtype(arg);
        return d != null ? d : TypePromotion.DEFAULT_FLOAT;
    }

    /** {@code empty.memory_format(size, *, dtype, layout, device, pin_memory, memory_format)}: a new uninitialized tensor. */
    public static Tensor empty(Call c) {
        long[] sizes = sizes(c, 0);
        checkStrided(c, 2);
        MemoryFormat format = c.memoryFormat(5);
        long[] strides = switch (format == null ? MemoryFormat.CONTIGUOUS_FORMAT : format) {
            case CONTIGUOUS_FORMAT -> Shapes.contiguousStrides(sizes);
            case CHANNELS_LAST -> channelsLast(c, sizes, 4);
            case CHANNELS_LAST_3D -> channelsLast(c, sizes, 5);
            case PRESERVE_FORMAT -> throw c.error(5, "preserve memory format is unsupported by the empty factory");
        };
        return c.dispatcher().emptyStrided(sizes, strides, dtypeOrDefault(c, 1), c.device());
    }

    /** {@code empty_strided(size, stride, *, dtype, layout, device, pin_memory)}: a new uninitialized tensor with those strides. */
    public static Tensor emptyStrided(Call c) {
        long[] sizes = sizes(c, 0), strides = c.ints(1);
        if (strides.length != sizes.length) {
            throw c.error(1, "mismatch in length of strides and shape (" + strides.length + " vs " + sizes.length + ")");
        }
        for (long s : strides) {
            if (s < 0) throw c.error(1, "Negative strides are not supported at the moment, got strides: " + Arrays.toString(strides));
        }
        checkStrided(c, 3);
        return c.dispatcher().emptyStrided(sizes, strides, dtypeOrDefault(c, 2), c.device());
    }

    private static void checkStrided(Call c, int arg) {
        if (c.arg(arg) != null && c.arg(arg) != Layout.STRIDED) throw c.error(arg, "only the strided layout is supported");
    }

    /** Strides with the channel dimension (1) innermost, then the spatial ones, then the batch. */
    private static long[] channelsLast(Call c, long[] sizes, int rank) {
        if (sizes.length != rank) throw c.error(5, "required rank " + rank + " tensor to use channels_last format");
        long[] strides = new long[rank];
        strides[1] = 1;
        long s = Math.max(sizes[1], 1);
        for (int d = rank - 1; d >= 2; d--) {
            strides[d] = s;
            s *= Math.max(sizes[d], 1);
        }
        strides[0] = s;
        return strides;
    }

    // ---- arange -----------------------------------------------------------------------------

    /**
     * What an arange call produces: {@code count} values {@code start + i*step} of {@code dtype}.
     * PyTorch computes them in the dtype's accumulate type: int64 for integers (a float bound is
     * truncated first), double for float32 and float64, float for float16 and bfloat16.
     */
    public record Arange(long count, DType dtype, Scalar start, Scalar step) {

        /** Value {@code i} of an integral arange (wraps like int64 arithmetic; narrow it to the dtype). */
        public long longAt(long i) {
            return start.toLong() + step.toLong() * i;
        }

        /** Value {@code i} of a float arange, before the one rounding to the dtype. */
        public double doubleAt(long i) {
            if (dtype.isReducedFloat()) return (float) start.toDouble() + (float) step.toDouble() * (float) i;
            return start.toDouble() + step.toDouble() * i;
        }
    }

    /** The plan of any arange overload of the call: {@code arange}, {@code arange.start_step}, {@code arange.start_out}. */
    public static Arange arange(Call c) {
        return switch (c.op()) {
            case "aten::arange" -> arange(c, Scalar.of(0L), c.scalar(0), Scalar.of(1L), c.dtype(1), -1, 0, -1);
            case "aten::arange.start_step" -> arange(c, c.scalar(0), c.scalar(1), c.scalar(2), c.dtype(3), 0, 1, 2);
            case "aten::arange.start_out" -> arange(c, c.scalar(0), c.scalar(1), c.scalar(2), c.tensor(3).dtype(), 0, 1, 2);
            default -> throw new IllegalArgumentException(c.op() + " is not an arange overload");
        };
    }

    /**
     * The plan for explicit bounds; {@code dtype} null infers int64 when every bound is integral
     * (bools count), else the default float. Errors name argument {@code stepArg} (and {@code stepArg - 1}
     * for the bounds, or 0 when there is no step argument).
     */
    public static Arange arange(Call c, Scalar start, Scalar end, Scalar step, DType dtype, int stepArg) {
        int endArg = Math.max(stepArg - 1, 0);
        return arange(c, start, end, step, dtype, Math.max(endArg - 1, 0), endArg, stepArg);
    }

    private static Arange arange(Call c, Scalar start, Scalar end, Scalar step, DType dtype,
                                 int startArg, int endArg, int stepArg) {
        int stepErr = stepArg >= 0 ? stepArg : endArg;
        if (dtype == null) {
            boolean integral = !start.isFloatingPoint() && !end.isFloatingPoint() && !step.isFloatingPoint();
            dtype = integral ? DType.INT64 : TypePromotion.DEFAULT_FLOAT;
        }
        if (dtype.isBool() || dtype.isFloat8()) throw c.error(stepErr, "\"arange_cpu\" not implemented for '" + dtype + "'");
        // The checks see the bounds in the accumulate type: truncated for integers, fp32 for the narrow floats.
        double xstart, xend, xstep;
        if (dtype.isIntegral()) {
            xstart = start.toLong();
            xend = end.toLong();
            xstep = step.toLong();
        } else if (dtype.isReducedFloat()) {
            xstart = (float) start.toDouble();
            xend = (float) end.toDouble();
            xstep = (float) step.toDouble();
        } else {
            xstart = start.toDouble();
            xend = end.toDouble();
            xstep = step.toDouble();
        }
        if (!(xstep > 0 || xstep < 0)) throw c.error(stepErr, "step must be nonzero");
        if (!Double.isFinite(xstart) || !Double.isFinite(xend)) {
            throw c.error(Double.isFinite(xstart) ? endArg : Math.max(startArg, 0), "unsupported range: " + start + " -> " + end);
        }
        if (!((xstep > 0 && xend >= xstart) || (xstep < 0 && xend <= xstart))) {
            throw c.error(stepErr, "upper bound and larger bound inconsistent with step sign");
        }
        double size;
        if (dtype == DType.INT64) {
            long s = start.toLong(), e = end.toLong(), k = step.toLong();
            size = (e - s + k - Long.signum(k)) / k;
        } else {
            size = Math.ceil((end.toDouble() - start.toDouble()) / step.toDouble());
        }
        if (!(size >= 0 && size <= 0x1p63)) throw c.error(stepErr, "invalid size, possible overflow?");
        return new Arange((long) size, dtype, start, step);
    }

    /**
     * The tensor an arange call writes: a new 1-D tensor on the call's device, or the {@code out}
     * argument of {@code arange.start_out}, which must already be 1-D with the range's length:
     * PyTorch resizes {@code out} in place, which this library's immutable tensors cannot do.
     */
    public static Tensor arangeOutput(Call c, Arange plan) {
        if (!c.op().equals("aten::arange.start_out")) return c.dispatcher().empty(new long[] {plan.count()}, plan.dtype(), c.device());
        Tensor out = c.tensor(3);
        if (out.dim() != 1 || out.size(0) != plan.count()) {
            throw c.error(3, "expected shape [" + plan.count() + "] for the range, got " + Arrays.toString(out.sizes())
                    + " (out= tensors are not resized)");
        }
        return out;
    }
}
