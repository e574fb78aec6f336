package dev.sipu.dispatch.meta;

import dev.sipu.api.DType;
import dev.sipu.api.Scalar;
import dev.sipu.api.TypePromotion;
import dev.sipu.dispatch.Call;

import java.util.Arrays;

/** Size and dtype rules of the factory ops (empty, arange), shared by every device. */
public final class FactoryMeta {
    private FactoryMeta() {}

    public static long[] sizes(Call c, int arg) {
        long[] s = c.ints(arg);
        for (long v : s) if (v < 0) throw c.error(arg, "negative dimension " + v + " in " + Arrays.toString(s));
        return s;
    }

    public static DType dtypeOrDefault(Call c, int arg) {
        DType d = c.dtype(arg);
        return d != null ? d : TypePromotion.DEFAULT_FLOAT;
    }

    /** The arange plan: element count, and the dtype when none is given (int64 unless any bound is a float). */
    public record Arange(long count, DType dtype, Scalar start, Scalar step) {}

    public static Arange arange(Call c, Scalar start, Scalar end, Scalar step, DType dtype, int stepArg) {
        double s = start.toDouble(), e = end.toDouble(), st = step.toDouble();
        if (Double.isNaN(s) || Double.isNaN(e) || Double.isInfinite(s) || Double.isInfinite(e)) {
            throw c.error(0, "unsupported range: " + start + " -> " + end);
        }
        if (st == 0) throw c.error(stepArg, "step must be nonzero");
        if ((st > 0 && e < s) || (st < 0 && e > s)) {
            throw c.error(stepArg, "upper bound and larger bound inconsistent with step sign");
        }
        DType d = dtype;
        if (d == null) {
            boolean anyFloat = start.isFloatingPoint() || end.isFloatingPoint() || step.isFloatingPoint();
            d = anyFloat ? TypePromotion.DEFAULT_FLOAT : DType.INT64;
        }
        long n;
        if (d.isIntegral() && !start.isFloatingPoint() && !end.isFloatingPoint() && !step.isFloatingPoint()) {
            long a = start.toLong(), b = end.toLong(), k = step.toLong();
            n = k > 0 ? Math.ceilDiv(b - a, k) : Math.ceilDiv(a - b, -k);
        } else {
            n = (long) Math.ceil((e - s) / st);
        }
        return new Arange(Math.max(n, 0), d, start, step);
    }
}
