package dev.sipu.bench;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import dev.sipu.api.CpuMemory;
import dev.sipu.api.DType;
import dev.sipu.api.Device;
import dev.sipu.api.Tensor;
import dev.sipu.dispatch.Dispatcher;

import java.lang.foreign.ValueLayout;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;

/**
 * The benchmark rows at DeepSeek-V3 shapes: for each, how to run it through the library (SIPU or
 * CPU, inputs and outputs prepared outside the timed call where the op writes into given tensors) and,
 * where written, on libtorch through DJL's NDArray API (float32 only: DJL's JNI cannot carry bf16).
 * Where libtorch has no single op, the peer is the shortest chain of its ops, written out here.
 */
final class Rows {
    private Rows() {}

    /** One row; flops or bytes give the achieved rate (0 when not meaningful). */
    record Row(String name, String shape, String dtype, double flops, double bytes, Library library, Torch torch, String torchHow) {}

    /** Prepares the library call on a device; tensors made go to {@code owned}. */
    interface Library {
        Runnable prepare(Dispatcher d, Device dev, List<Tensor> owned);
    }

    /** Prepares the libtorch call; arrays live in the manager. */
    interface Torch {
        Runnable prepare(NDManager m);
    }

    static final Map<String, Row> ALL = new LinkedHashMap<>();

    private static void add(Row r) { ALL.put(r.name(), r); }

    static {
        int k = 7168, n = 2048;
        for (int m : new int[] {1, 4, 16, 128, 512}) {
            add(new Row("mm f32 M=" + m, m + "x" + k + " @ W^T, W " + n + "x" + k, "f32", 2.0 * m * k * n, 0,
                    (d, dev, o) -> mm(d, dev, o, m, k, n, DType.FLOAT32), torchMm(m, k, n), "matMul, fresh output"));
        }
        add(new Row("mm f32 1024^3", "1024x1024x1024", "f32", 2.0 * 1024 * 1024 * 1024, 0,
                (d, dev, o) -> mm(d, dev, o, 1024, 1024, 1024, DType.FLOAT32), torchMm(1024, 1024, 1024), "matMul, fresh output"));
        for (int m : new int[] {1, 16, 512}) {
            add(new Row("mm bf16 M=" + m, m + "x" + k + " @ W^T, W " + n + "x" + k, "bf16", 2.0 * m * k * n, 0,
                    (d, dev, o) -> mm(d, dev, o, m, k, n, DType.BFLOAT16), null, "bf16 needs a TorchScript peer (not written)"));
        }
        add(new Row("mm bf16 1024^3", "1024x1024x1024", "bf16", 2.0 * 1024 * 1024 * 1024, 0,
                (d, dev, o) -> mm(d, dev, o, 1024, 1024, 1024, DType.BFLOAT16), null, "bf16 needs a TorchScript peer (not written)"));
        add(new Row("mm.dtype bf16->f32", "512x7168x2048", "bf16", 2.0 * 512 * k * n, 0, (d, dev, o) -> {
            Tensor a = rand(d, dev, o, DType.BFLOAT16, 512, k), b = rand(d, dev, o, DType.BFLOAT16, k, n);
            return () -> ((Tensor) d.call("aten::mm.dtype", a, b, DType.FLOAT32)).close();
        }, null, "bf16 needs a TorchScript peer (not written)"));
        for (int m : new int[] {1, 128}) {
            add(new Row("fp8_gemm M=" + m, m + "x" + k + "x" + n, "e4m3", 2.0 * m * k * n, 0, (d, dev, o) -> {
                Tensor a = rand(d, dev, o, DType.FLOAT8_E4M3FN, m, k), b = rand(d, dev, o, DType.FLOAT8_E4M3FN, n, k);
                Tensor as = rand(d, dev, o, DType.FLOAT32, m, k / 128), bs = rand(d, dev, o, DType.FLOAT32, n / 128, k / 128);
                return () -> ((Tensor) d.call("deepseek::fp8_gemm", a, as, b, bs)).close();
            }, null, "no float8 GEMM in DJL"));
        }
        add(new Row("rms_norm", "256x7168", "f32", 0, 2.0 * 256 * 7168 * 4, (d, dev, o) -> {
            Tensor x = rand(d, dev, o, DType.FLOAT32, 256, 7168), w = rand(d, dev, o, DType.FLOAT32, 7168);
            Tensor out = own(o, d.ops().empty(x.sizes(), DType.FLOAT32, dev));
            return () -> d.call("_C::rms_norm", out, x, w, 1e-6);
        }, m -> {
            NDArray x = m.randomNormal(new Shape(256, 7168)), w = m.randomNormal(new Shape(7168));
            return () -> {
                try (NDArray r = x.square().mean(new int[] {-1}, true).add(1e-6f).sqrt(); NDArray y = x.div(r).mul(w)) {
                    y.getShape();
                }
            };
        }, "square, mean, add, sqrt, div, mul"));
        add(new Row("fused_add_rms_norm", "256x7168", "f32", 0, 4.0 * 256 * 7168 * 4, (d, dev, o) -> {
            Tensor x = rand(d, dev, o, DType.FLOAT32, 256, 7168), res = rand(d, dev, o, DType.FLOAT32, 256, 7168);
            Tensor w = rand(d, dev, o, DType.FLOAT32, 7168);
            return () -> d.call("_C::fused_add_rms_norm", x, res, w, 1e-6);
        }, m -> {
            NDArray x = m.randomNormal(new Shape(256, 7168)), res = m.randomNormal(new Shape(256, 7168)), w = m.randomNormal(new Shape(7168));
            return () -> {
                try (NDArray z = x.add(res); NDArray r = z.square().mean(new int[] {-1}, true).add(1e-6f).sqrt(); NDArray y = z.div(r).mul(w)) {
                    y.getShape();
                }
            };
        }, "add, square, mean, add, sqrt, div, mul"));
        add(new Row("silu_and_mul", "256x(2x2048)", "f32", 0, 3.0 * 256 * 2048 * 4, (d, dev, o) -> {
            Tensor x = rand(d, dev, o, DType.FLOAT32, 256, 4096);
            Tensor out = own(o, d.ops().empty(new long[] {256, 2048}, DType.FLOAT32, dev));
            return () -> d.call("_C::silu_and_mul", out, x);
        }, m -> {
            NDArray x = m.randomNormal(new Shape(256, 4096));
            return () -> {
                try (NDArray a = x.get(":, 0:2048"); NDArray b = x.get(":, 2048:"); NDArray y = a.mul(ai.djl.nn.Activation.sigmoid(a)).mul(b)) {
                    y.getShape();
                }
            };
        }, "slice, sigmoid, mul, mul"));
        add(new Row("softmax", "32x4096", "f32", 0, 2.0 * 32 * 4096 * 4, (d, dev, o) -> {
            Tensor x = rand(d, dev, o, DType.FLOAT32, 32, 4096);
            return () -> ((Tensor) d.call("aten::_softmax", x, -1L, false)).close();
        }, m -> {
            NDArray x = m.randomNormal(new Shape(32, 4096));
            return () -> x.softmax(-1).close();
        }, "softmax, fresh output"));
        for (int t : new int[] {64, 512}) {
            add(new Row("grouped_topk T=" + t, t + "x256 (8 groups, top-8)", "f32", 0, 0, (d, dev, o) -> {
                Tensor s = rand(d, dev, o, DType.FLOAT32, t, 256), b = rand(d, dev, o, DType.FLOAT32, 256);
                return () -> ((List<?>) d.call("_moe_C::grouped_topk", s, 8L, 4L, 8L, true, 2.5, b, 1L)).forEach(x -> ((Tensor) x).close());
            }, null, "libtorch chain not written"));
        }
        add(new Row("fused_experts", "64 tok, top-8 of 32, H 2048, I 512", "bf16", 2.0 * 64 * 8 * 3 * 2048 * 512, 0, (d, dev, o) -> {
            int e = 32, h = 2048, i = 512, tok = 64, top = 8;
            Tensor x = rand(d, dev, o, DType.BFLOAT16, tok, h), w1 = rand(d, dev, o, DType.BFLOAT16, e, 2 * i, h);
            Tensor w2 = rand(d, dev, o, DType.BFLOAT16, e, h, i), tw = rand(d, dev, o, DType.FLOAT32, tok, top);
            Tensor ids = ints(d, dev, o, tok * top, j -> (j * 5 + j / top) % e, tok, top);
            return () -> d.call("vllm::inplace_fused_experts", x, w1, w2, tw, ids);
        }, null, "libtorch chain not written"));
        add(new Row("varlen attention prefill", "512 tok, 16 heads, d 128, causal", "bf16", 2.0 * 2 * 16 * 128 * 512 * 512 / 2, 0, (d, dev, o) -> {
            Tensor q = rand(d, dev, o, DType.BFLOAT16, 512, 16, 128), kk = rand(d, dev, o, DType.BFLOAT16, 512, 16, 128);
            Tensor v = rand(d, dev, o, DType.BFLOAT16, 512, 16, 128), cu = ints(d, dev, o, 2, j -> j * 512, 2);
            return () -> ((List<?>) d.call("_vllm_fa2_C::varlen_fwd", q, kk, v, null, cu, cu, null, null, null, null, 512L, 512L, 0.0,
                    0.088, false, true, -1L, -1L, 0.0, false, 0L, null)).forEach(x -> ((Tensor) x).close());
        }, null, "SDPA needs a TorchScript peer (not written)"));
        add(new Row("paged attention decode", "batch 8, context 1024, 16 heads, d 128", "bf16", 2.0 * 2 * 8 * 16 * 128 * 1024, 0, (d, dev, o) -> {
            int b = 8, ctx = 1024, page = 16, blocks = b * ctx / page;
            Tensor q = rand(d, dev, o, DType.BFLOAT16, b, 16, 128), kc = rand(d, dev, o, DType.BFLOAT16, blocks, page, 16, 128);
            Tensor vc = rand(d, dev, o, DType.BFLOAT16, blocks, page, 16, 128), out = own(o, d.ops().empty(new long[] {b, 16, 128}, DType.BFLOAT16, dev));
            Tensor cu = ints(d, dev, o, b + 1, j -> j, b + 1), used = ints(d, dev, o, b, j -> ctx, b);
            Tensor table = ints(d, dev, o, blocks, j -> j, b, ctx / page);
            return () -> d.call("vllm::unified_attention", q, kc, vc, out, cu, 1L, used, (long) ctx, 0.088, true, new long[] {-1, -1}, table, 0.0);
        }, null, "paged attention has no libtorch op"));
        add(new Row("argmax", "8x129280", "f32", 0, 8.0 * 129280 * 4, (d, dev, o) -> {
            Tensor x = rand(d, dev, o, DType.FLOAT32, 8, 129280);
            return () -> ((Tensor) d.call("aten::argmax", x, -1L, false)).close();
        }, m -> {
            NDArray x = m.randomNormal(new Shape(8, 129280));
            return () -> x.argMax(-1).close();
        }, "argMax"));
        add(new Row("topk k=8", "8x129280", "f32", 0, 8.0 * 129280 * 4, (d, dev, o) -> {
            Tensor x = rand(d, dev, o, DType.FLOAT32, 8, 129280);
            return () -> ((List<?>) d.call("aten::topk", x, 8L, -1L, true, true)).forEach(t -> ((Tensor) t).close());
        }, m -> {
            NDArray x = m.randomNormal(new Shape(8, 129280));
            return () -> x.topK(8, -1).forEach(NDArray::close);
        }, "topK"));
        add(new Row("sort", "64x256", "f32", 0, 0, (d, dev, o) -> {
            Tensor x = rand(d, dev, o, DType.FLOAT32, 64, 256);
            return () -> ((List<?>) d.call("aten::sort", x, -1L, false)).forEach(t -> ((Tensor) t).close());
        }, m -> {
            NDArray x = m.randomNormal(new Shape(64, 256));
            return () -> x.sort(-1).close();
        }, "sort (values only)"));
        add(new Row("copy", "4096x4096", "f32", 0, 2.0 * 4096 * 4096 * 4, (d, dev, o) -> {
            Tensor x = rand(d, dev, o, DType.FLOAT32, 4096, 4096), y = own(o, d.ops().empty(x.sizes(), DType.FLOAT32, dev));
            return () -> d.ops().copy_(y, x);
        }, m -> {
            NDArray x = m.randomNormal(new Shape(4096, 4096));
            return () -> x.duplicate().close();
        }, "duplicate, fresh output"));
        add(new Row("cast f32->f16", "4096x4096", "f32", 0, 4096.0 * 4096 * 6, (d, dev, o) -> {
            Tensor x = rand(d, dev, o, DType.FLOAT32, 4096, 4096);
            return () -> d.ops().toDtype(x, DType.FLOAT16).close();
        }, m -> {
            NDArray x = m.randomNormal(new Shape(4096, 4096));
            return () -> x.toType(DataType.FLOAT16, true).close();
        }, "toType, fresh output"));
    }

    /** The linear layout on both sides: x [m, k] times the transpose of a row-major weight [n, k]. */
    private static Torch torchMm(int m, int k, int n) {
        return mgr -> {
            NDArray a = mgr.randomNormal(new Shape(m, k)), w = mgr.randomNormal(new Shape(n, k)), wt = w.transpose();
            return () -> a.matMul(wt).close();
        };
    }

    private static Runnable mm(Dispatcher d, Device dev, List<Tensor> o, int m, int k, int n, DType t) {
        Tensor a = rand(d, dev, o, t, m, k), w = rand(d, dev, o, t, n, k), wt = own(o, d.ops().t(w));
        return () -> d.ops().mm(a, wt).close();
    }

    static Tensor own(List<Tensor> o, Tensor t) {
        o.add(t);
        return t;
    }

    /** Uniform values in [-1, 1) (float8 in [-1, 1) too), made on the host and moved. */
    static Tensor rand(Dispatcher d, Device dev, List<Tensor> o, DType t, long... shape) {
        long n = 1;
        for (long s : shape) n *= s;
        Tensor host = Tensor.adopt(CpuMemory.allocate(n * 4), DType.FLOAT32, shape);
        SplittableRandom rnd = new SplittableRandom(n);
        for (long i = 0; i < n; i++) host.data().setAtIndex(ValueLayout.JAVA_FLOAT, i, (float) (rnd.nextDouble() * 2 - 1));
        try (host; Tensor moved = d.to(host, dev)) {
            return own(o, t == DType.FLOAT32 ? d.ops().clone(moved) : d.ops().toDtype(moved, t));
        }
    }

    static Tensor ints(Dispatcher d, Device dev, List<Tensor> o, int n, java.util.function.IntUnaryOperator f, long... shape) {
        Tensor host = Tensor.adopt(CpuMemory.allocate(n * 4L), DType.INT32, shape);
        try (host) {
            for (int i = 0; i < n; i++) host.data().setAtIndex(ValueLayout.JAVA_INT, i, f.applyAsInt(i));
            return own(o, d.to(host, dev));
        }
    }

    static List<String> names() { return new ArrayList<>(ALL.keySet()); }
}
