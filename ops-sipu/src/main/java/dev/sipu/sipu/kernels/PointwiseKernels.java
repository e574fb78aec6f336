package dev.sipu.sipu.kernels;

import dev.sipu.api.Scalar;
import dev.sipu.api.Tensor;
import dev.sipu.dispatch.Call;
import dev.sipu.dispatch.meta.ElementwiseMeta;
import dev.sipu.dispatch.meta.PointwiseMeta;
import dev.sipu.dispatch.meta.ScalarCast;
import dev.sipu.dispatch.spi.Registrar;
import dev.sipu.ffm.gen.SipuKernels;
import dev.sipu.sipu.Native;

import java.lang.foreign.Arena;

import static dev.sipu.dispatch.DispatchKey.SIPU;
import static dev.sipu.sipu.kernels.ElementwiseKernels.binary;
import static dev.sipu.sipu.kernels.ElementwiseKernels.desc;
import static dev.sipu.sipu.kernels.ElementwiseKernels.unary;

/** Comparisons, bitwise ops, powers, float functions, clamp, where and masked_fill_ on SIPU's C iteration core. */
final class PointwiseKernels {
    private PointwiseKernels() {}

    static void register(Registrar r) {
        compare(r, "eq", SipuKernels.SIPU_BINARY_EQ());
        compare(r, "lt", SipuKernels.SIPU_BINARY_LT());
        compare(r, "le", SipuKernels.SIPU_BINARY_LE());
        compare(r, "gt", SipuKernels.SIPU_BINARY_GT());
        compare(r, "ge", SipuKernels.SIPU_BINARY_GE());
        r.register("aten::bitwise_and.Tensor", SIPU, c -> binary(c, PointwiseMeta.bitwise(c), SipuKernels.SIPU_BINARY_BITWISE_AND(), 1));
        r.register("aten::bitwise_or.Tensor", SIPU, c -> binary(c, PointwiseMeta.bitwise(c), SipuKernels.SIPU_BINARY_BITWISE_OR(), 1));
        r.register("aten::bitwise_not", SIPU, c -> unary(c, PointwiseMeta.bitwiseNot(c), SipuKernels.SIPU_UNARY_BITWISE_NOT()));
        r.register("aten::floor_divide", SIPU, c -> binary(c, PointwiseMeta.floorDivide(c), SipuKernels.SIPU_BINARY_FLOOR_DIVIDE(), 1));
        for (String pow : new String[] {"aten::pow.Scalar", "aten::pow.Tensor_Scalar", "aten::pow.Tensor_Tensor_out"}) {
            r.register(pow, SIPU, c -> binary(c, PointwiseMeta.pow(c), SipuKernels.SIPU_BINARY_POW(), 1));
        }
        r.register("aten::rsub.Scalar", SIPU, PointwiseKernels::rsub);
        r.register("aten::div_.Tensor", SIPU, c -> binary(c, PointwiseMeta.divInPlace(c), SipuKernels.SIPU_BINARY_DIV(), 1));
        r.register("aten::cos", SIPU, c -> unary(c, PointwiseMeta.floatFunction(c), SipuKernels.SIPU_UNARY_COS()));
        r.register("aten::sin", SIPU, c -> unary(c, PointwiseMeta.floatFunction(c), SipuKernels.SIPU_UNARY_SIN()));
        r.register("aten::rsqrt", SIPU, c -> unary(c, PointwiseMeta.floatFunction(c), SipuKernels.SIPU_UNARY_RSQRT()));
        r.register("aten::reciprocal", SIPU, c -> unary(c, PointwiseMeta.floatFunction(c), SipuKernels.SIPU_UNARY_RECIPROCAL()));
        r.register("aten::clamp", SIPU, PointwiseKernels::clamp);
        r.register("aten::where.self", SIPU, PointwiseKernels::where);
        r.register("aten::masked_fill_.Scalar", SIPU, PointwiseKernels::maskedFill);
    }

    private static void compare(Registrar r, String name, int op) {
        r.register("aten::" + name + ".Tensor", SIPU, c -> binary(c, PointwiseMeta.compare(c), op, 1));
        r.register("aten::" + name + ".Scalar", SIPU, c -> binary(c, PointwiseMeta.compare(c), op, 1));
    }

    private static Tensor rsub(Call c) {
        ElementwiseMeta m = PointwiseMeta.rsub(c);
        Scalar alpha;
        try {
            alpha = PointwiseMeta.rsubAlpha(c, m);
        } catch (RuntimeException e) {
            m.close();
            throw e;
        }
        return binary(c, m, SipuKernels.SIPU_BINARY_RSUB(), alpha.toDouble());
    }

    private static Tensor clamp(Call c) {
        try (ElementwiseMeta m = PointwiseMeta.clamp(c); Arena a = Arena.ofConfined()) {
            Scalar lo = PointwiseMeta.clampBound(c, 1, m), hi = PointwiseMeta.clampBound(c, 2, m);
            Tensor out = m.output();
            if (out.numel() > 0) {
                Native.check(c.op(), SipuKernels.sipu_clamp(desc(a, c, out, "out"), desc(a, c, m.input(0), "self"),
                        lo == null ? 0 : 1, lo == null ? 0 : lo.toDouble(), hi == null ? 0 : 1, hi == null ? 0 : hi.toDouble()));
            }
            return m.takeOutput();
        }
    }

    private static Tensor where(Call c) {
        try (ElementwiseMeta m = PointwiseMeta.where(c); Arena a = Arena.ofConfined()) {
            Tensor out = m.output();
            if (out.numel() > 0) {
                Native.check(c.op(), SipuKernels.sipu_where(desc(a, c, out, "out"), desc(a, c, m.input(0), "condition"),
                        desc(a, c, m.input(1), "self"), desc(a, c, m.input(2), "other")));
            }
            return m.takeOutput();
        }
    }

    private static Tensor maskedFill(Call c) {
        Tensor self = c.tensor(0);
        try (Tensor mask = PointwiseMeta.maskedFill(c); Arena a = Arena.ofConfined()) {
            Scalar v = ScalarCast.to(c, 2, self.dtype());
            if (self.numel() > 0) {
                Native.check(c.op(), SipuKernels.sipu_masked_fill(desc(a, c, self, "self"), desc(a, c, mask, "mask"),
                        v.toDouble(), v.toLong()));
            }
            return self;
        }
    }
}
