package dev.sipu.dispatch;

import dev.sipu.api.DType;
import dev.sipu.api.Device;
import dev.sipu.api.MemoryFormat;
import dev.sipu.api.Scalar;
import dev.sipu.api.Tensor;

import java.util.List;
import java.util.Map;

/**
 * Typed methods for the common ops, each a boxed call through the dispatcher under the op's schema
 * name. New tensors are owned by the caller (close them); views keep their base's storage alive.
 */
public final class Ops {
    private final Dispatcher d;

    Ops(Dispatcher d) { this.d = d; }

    private Tensor t(String op, Object... args) { return (Tensor) d.call(op, args); }

    private Tensor t(String op, Object[] args, Map<String, ?> kwargs) { return (Tensor) d.call(op, args, kwargs); }

    // ---- factories --------------------------------------------------------------------------

    public Tensor empty(long[] sizes, DType dtype, Device device) {
        return t("aten::empty.memory_format", new Object[] {sizes}, Map.of("dtype", dtype, "device", device));
    }

    public Tensor full(long[] sizes, Scalar value, DType dtype, Device device) {
        return t("aten::full", new Object[] {sizes, value}, Map.of("dtype", dtype, "device", device));
    }

    public Tensor zeros(long[] sizes, DType dtype, Device device) {
        return t("aten::zeros", new Object[] {sizes}, Map.of("dtype", dtype, "device", device));
    }

    public Tensor arange(Scalar start, Scalar end, Scalar step, DType dtype, Device device) {
        return t("aten::arange.start_step", new Object[] {start, end, step}, Map.of("dtype", dtype, "device", device));
    }

    // ---- copies -----------------------------------------------------------------------------

    public Tensor copy_(Tensor dst, Tensor src) { return t("aten::copy_", dst, src); }

    public Tensor fill_(Tensor self, Scalar value) { return t("aten::fill_.Scalar", self, value); }

    public Tensor zero_(Tensor self) { return t("aten::zero_", self); }

    public Tensor clone(Tensor self) { return t("aten::clone", self); }

    /** A new row-major copy, even when {@code self} is already contiguous. */
    public Tensor contiguousCopy(Tensor self) {
        return t("aten::clone", new Object[] {self}, Map.of("memory_format", MemoryFormat.CONTIGUOUS_FORMAT));
    }

    /** {@code self} itself when contiguous (a new reference is not taken), else a contiguous copy. */
    public Tensor contiguous(Tensor self) { return t("aten::contiguous", self); }

    public Tensor toDtype(Tensor self, DType dtype) {
        return t("aten::_to_copy", new Object[] {self}, Map.of("dtype", dtype));
    }

    public Tensor cat(List<Tensor> tensors, long dim) { return t("aten::cat", tensors, dim); }

    // ---- views ------------------------------------------------------------------------------

    public Tensor view(Tensor self, long... sizes) { return t("aten::view", self, sizes); }
    public Tensor reshape(Tensor self, long... sizes) { return t("aten::reshape", self, sizes); }
    public Tensor asStrided(Tensor self, long[] sizes, long[] strides, long offset) {
        return t("aten::as_strided", self, sizes, strides, offset);
    }
    public Tensor expand(Tensor self, long... sizes) { return t("aten::expand", self, sizes); }
    public Tensor permute(Tensor self, long... dims) { return t("aten::permute", self, dims); }
    public Tensor transpose(Tensor self, long dim0, long dim1) { return t("aten::transpose.int", self, dim0, dim1); }
    public Tensor t(Tensor self) { return t("aten::t", self); }
    public Tensor select(Tensor self, long dim, long index) { return t("aten::select.int", self, dim, index); }
    public Tensor slice(Tensor self, long dim, long start, long end, long step) {
        return t("aten::slice.Tensor", self, dim, start, end, step);
    }
    public Tensor narrow(Tensor self, long dim, long start, long length) { return t("aten::narrow", self, dim, start, length); }
    public Tensor unsqueeze(Tensor self, long dim) { return t("aten::unsqueeze", self, dim); }
    public Tensor squeeze(Tensor self, long dim) { return t("aten::squeeze.dim", self, dim); }

    // ---- elementwise ------------------------------------------------------------------------

    public Tensor add(Tensor a, Tensor b) { return t("aten::add.Tensor", a, b); }
    public Tensor add(Tensor a, Tensor b, Scalar alpha) { return t("aten::add.Tensor", new Object[] {a, b}, Map.of("alpha", alpha)); }
    public Tensor sub(Tensor a, Tensor b) { return t("aten::sub.Tensor", a, b); }
    public Tensor mul(Tensor a, Tensor b) { return t("aten::mul.Tensor", a, b); }
    public Tensor div(Tensor a, Tensor b) { return t("aten::div.Tensor", a, b); }
    public Tensor neg(Tensor a) { return t("aten::neg", a); }
    public Tensor silu(Tensor a) { return t("aten::silu", a); }
    public Tensor sigmoid(Tensor a) { return t("aten::sigmoid", a); }

    // ---- matmul -----------------------------------------------------------------------------

    public Tensor mm(Tensor a, Tensor b) { return t("aten::mm", a, b); }
    public Tensor bmm(Tensor a, Tensor b) { return t("aten::bmm", a, b); }
    public Tensor matmul(Tensor a, Tensor b) { return t("aten::matmul", a, b); }
    public Tensor linear(Tensor input, Tensor weight, Tensor bias) { return t("aten::linear", input, weight, bias); }

    // ---- vLLM -------------------------------------------------------------------------------

    public void rmsNorm(Tensor out, Tensor input, Tensor weight, double eps) { d.call("_C::rms_norm", out, input, weight, eps); }
    public void siluAndMul(Tensor out, Tensor input) { d.call("_C::silu_and_mul", out, input); }
}
