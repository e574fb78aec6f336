package dev.sipu.bench;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.pytorch.engine.PtSymbolBlock;
import ai.djl.pytorch.jni.IValue;
import dev.sipu.api.CpuMemory;
import dev.sipu.api.DType;
import dev.sipu.api.Device;
import dev.sipu.api.Tensor;
import dev.sipu.dispatch.Dispatcher;
import dev.sipu.ffm.NativeLibrary;
import dev.sipu.ffm.gen.SipuKernels;
import dev.sipu.model.DeepseekV3;
import dev.sipu.model.KvCache;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.TreeMap;
import java.util.function.IntUnaryOperator;

/**
 * The benchmark rows at DeepSeek-V3 shapes: for each, how to run it through the library (SIPU or
 * CPU, inputs and outputs prepared outside the timed call where the op writes into given tensors) and,
 * where written, on libtorch through DJL: NDArray chains in float32, TorchScript modules ({@link Peers})
 * for bf16 and for what NDArray lacks. Also the machine limits the last column is measured against,
 * and the fixed costs (dispatch, downcall) and the tiny model's decode rate.
 */
final class Rows {
    private Rows() {}

    enum Kind {
        /** an op: time per call, rate against its limit */
        OP,
        /** a machine-limit probe: its rate is the limit */
        LIMIT,
        /** a fixed cost per call: the time is the result */
        OVERHEAD,
        /** a model step: tokens per second */
        TOKENS
    }

    /** Which measured limit bounds a row's compute (memory-bound rows are bounded by triad at their working set). */
    enum Peak { NONE, FMA_F32, BF16 }

    /**
     * One row. flops and bytes give the achieved rate (0 when not meaningful; bytes is the least
     * traffic the op needs, which also picks the triad working set). devices lists where it runs.
     */
    record Row(String name, String shape, String dtype, Kind kind, double flops, double bytes, Peak peak, Library library,
               Torch torch, String note, List<String> devices) {
        boolean runs(String device) { return devices.contains(device); }
    }

    /** Prepares the library call on a device; what it makes goes to {@code owned}. */
    interface Library {
        Runnable prepare(Dispatcher d, Device dev, List<AutoCloseable> owned);
    }

    /** Prepares the libtorch call; arrays live in the manager, IValues go to {@code owned}. */
    interface Torch {
        Runnable prepare(NDManager m, List<AutoCloseable> owned);
    }

    static final Map<String, Row> ALL = new LinkedHashMap<>();
    /** triad rows by working-set bytes (rounded), made for whatever memory-bound rows exist */
    private static final Map<Long, Row> TRIAD = new TreeMap<>();

    static final String FMA = "limit fp32 FMA", BF16_DOT = "limit bf16 dot", AMX = "limit bf16 AMX";
    static final Path MODELS = Path.of(System.getProperty("sipu.models.dir", "../shared/models"));

    private static void op(String name, String shape, String dtype, double flops, double bytes, Peak peak, Library lib, Torch torch, String note) {
        List<String> dev = torch == null ? List.of("sipu", "cpu") : List.of("sipu", "cpu", "torch");
        add(new Row(name, shape, dtype, Kind.OP, flops, bytes, peak, lib, torch, note, dev));
    }

    private static void add(Row r) {
        ALL.put(r.name(), r);
        if (r.kind() == Kind.OP && r.bytes() > 0) triadFor(r.bytes());
    }

    static {
        add(new Row(FMA, "independent FMA chains, all threads", "f32", Kind.LIMIT, 0, 0, Peak.NONE,
                (d, dev, o) -> probe(false), null, "sipu_probe_fma_f32 (C, the ISA the kernels chose)", List.of("sipu")));
        add(new Row(BF16_DOT, "independent bf16 pair dots, all threads", "bf16", Kind.LIMIT, 0, 0, Peak.NONE,
                (d, dev, o) -> probe(true), null, "sipu_probe_dot_bf16 (vdpbf16ps where present)", List.of("sipu")));
        add(new Row(AMX, "AMX tiles, 4 tdpbf16ps chains, all threads", "bf16", Kind.LIMIT, 0, 0, Peak.NONE,
                (d, dev, o) -> amx(), null, "sipu_probe_amx_bf16 (SIPU bf16 and fp8 GEMMs use AMX where present, as libtorch's oneDNN does)", List.of("sipu")));

        int k = 7168, n = 2048;
        for (int m : new int[] {1, 4, 16, 128, 512}) {
            op("mm f32 M=" + m, m + "x" + k + " @ W^T, W " + n + "x" + k, "f32", 2.0 * m * k * n, 4.0 * (m * k + (double) n * k + m * n), Peak.FMA_F32,
                    (d, dev, o) -> mm(d, dev, o, m, k, n, DType.FLOAT32), torchMm(m, k, n), "matMul, fresh output");
        }
        op("mm f32 1024^3", "1024x1024x1024", "f32", 2.0 * 1024 * 1024 * 1024, 4.0 * 3 * 1024 * 1024, Peak.FMA_F32,
                (d, dev, o) -> mm(d, dev, o, 1024, 1024, 1024, DType.FLOAT32), torchMm(1024, 1024, 1024), "matMul, fresh output");
        for (int m : new int[] {1, 4, 16, 128, 512}) {
            op("mm bf16 M=" + m, m + "x" + k + " @ W^T, W " + n + "x" + k, "bf16", 2.0 * m * k * n, 2.0 * (m * k + (double) n * k + m * n), Peak.BF16,
                    (d, dev, o) -> mm(d, dev, o, m, k, n, DType.BFLOAT16), scriptMm(m, k, n), "TorchScript mm(x, w.t()), fresh output");
        }
        op("mm bf16 1024^3", "1024x1024x1024", "bf16", 2.0 * 1024 * 1024 * 1024, 2.0 * 3 * 1024 * 1024, Peak.BF16,
                (d, dev, o) -> mm(d, dev, o, 1024, 1024, 1024, DType.BFLOAT16), scriptMm(1024, 1024, 1024), "TorchScript mm(x, w.t()), fresh output");
        op("mm.dtype bf16->f32", "512x7168x2048", "bf16", 2.0 * 512 * k * n, 2.0 * (512 * k + (double) k * n) + 4.0 * 512 * n, Peak.BF16, (d, dev, o) -> {
            Tensor a = rand(d, dev, o, DType.BFLOAT16, 512, k), b = rand(d, dev, o, DType.BFLOAT16, k, n);
            return () -> ((Tensor) d.call("aten::mm.dtype", a, b, DType.FLOAT32)).close();
        }, (m, o) -> {
            Peers p = new Peers(m, o);
            return Peers.call(p.module("mm_to_f32"), p.bf16(512, k), p.bf16(k, n));
        }, "TorchScript mm in bf16 then .float() (no out_dtype mm in libtorch 2.5)");
        for (int m : new int[] {1, 4, 16, 128, 512}) {
            op("fp8_gemm M=" + m, m + "x" + k + "x" + n, "e4m3", 2.0 * m * k * n, (double) m * k + (double) n * k + 4.0 * m * n, Peak.BF16, (d, dev, o) -> {
                Tensor a = rand(d, dev, o, DType.FLOAT8_E4M3FN, m, k), b = rand(d, dev, o, DType.FLOAT8_E4M3FN, n, k);
                Tensor as = rand(d, dev, o, DType.FLOAT32, m, k / 128), bs = rand(d, dev, o, DType.FLOAT32, n / 128, k / 128);
                return () -> ((Tensor) d.call("deepseek::fp8_gemm", a, as, b, bs)).close();
            }, (mg, o) -> {
                Peers p = new Peers(mg, o);
                return Peers.call(p.module("fp8_gemm"), p.e4m3(m, k), p.f32(m, k / 128), p.e4m3(n, k), p.f32(n / 128, k / 128));
            }, "TorchScript: both operands dequantized (float, block scales) every call, fp32 mm, to bf16; libtorch has no CPU float8 GEMM");
        }
        op("rms_norm", "256x7168", "f32", 0, 2.0 * 256 * 7168 * 4, Peak.NONE, (d, dev, o) -> {
            Tensor x = rand(d, dev, o, DType.FLOAT32, 256, 7168), w = rand(d, dev, o, DType.FLOAT32, 7168);
            Tensor out = own(o, d.ops().empty(x.sizes(), DType.FLOAT32, dev));
            return () -> d.call("_C::rms_norm", out, x, w, 1e-6);
        }, (m, o) -> {
            NDArray x = m.randomNormal(new Shape(256, 7168)), w = m.randomNormal(new Shape(7168));
            return () -> {
                try (NDArray r = x.square().mean(new int[] {-1}, true).add(1e-6f).sqrt(); NDArray y = x.div(r).mul(w)) {
                    y.getShape();
                }
            };
        }, "square, mean, add, sqrt, div, mul");
        op("rms_norm bf16", "256x7168", "bf16", 0, 2.0 * 256 * 7168 * 2, Peak.NONE, (d, dev, o) -> {
            Tensor x = rand(d, dev, o, DType.BFLOAT16, 256, 7168), w = rand(d, dev, o, DType.BFLOAT16, 7168);
            Tensor out = own(o, d.ops().empty(x.sizes(), DType.BFLOAT16, dev));
            return () -> d.call("_C::rms_norm", out, x, w, 1e-6);
        }, (m, o) -> {
            Peers p = new Peers(m, o);
            return Peers.call(p.module("rms_norm"), p.bf16(256, 7168), p.bf16(7168));
        }, "TorchScript float, pow, mean, rsqrt, mul, to bf16, mul; fresh output");
        op("fused_add_rms_norm", "256x7168", "f32", 0, 4.0 * 256 * 7168 * 4, Peak.NONE, (d, dev, o) -> {
            Tensor x = rand(d, dev, o, DType.FLOAT32, 256, 7168), res = rand(d, dev, o, DType.FLOAT32, 256, 7168);
            Tensor w = rand(d, dev, o, DType.FLOAT32, 7168);
            return () -> d.call("_C::fused_add_rms_norm", x, res, w, 1e-6);
        }, (m, o) -> {
            NDArray x = m.randomNormal(new Shape(256, 7168)), res = m.randomNormal(new Shape(256, 7168)), w = m.randomNormal(new Shape(7168));
            return () -> {
                try (NDArray z = x.add(res); NDArray r = z.square().mean(new int[] {-1}, true).add(1e-6f).sqrt(); NDArray y = z.div(r).mul(w)) {
                    y.getShape();
                }
            };
        }, "add, square, mean, add, sqrt, div, mul");
        op("silu_and_mul", "256x(2x2048)", "f32", 0, 3.0 * 256 * 2048 * 4, Peak.NONE, (d, dev, o) -> {
            Tensor x = rand(d, dev, o, DType.FLOAT32, 256, 4096);
            Tensor out = own(o, d.ops().empty(new long[] {256, 2048}, DType.FLOAT32, dev));
            return () -> d.call("_C::silu_and_mul", out, x);
        }, (m, o) -> {
            NDArray x = m.randomNormal(new Shape(256, 4096));
            return () -> {
                try (NDArray a = x.get(":, 0:2048"); NDArray b = x.get(":, 2048:"); NDArray y = a.mul(ai.djl.nn.Activation.sigmoid(a)).mul(b)) {
                    y.getShape();
                }
            };
        }, "slice, sigmoid, mul, mul");
        op("silu_and_mul bf16", "256x(2x2048)", "bf16", 0, 3.0 * 256 * 2048 * 2, Peak.NONE, (d, dev, o) -> {
            Tensor x = rand(d, dev, o, DType.BFLOAT16, 256, 4096);
            Tensor out = own(o, d.ops().empty(new long[] {256, 2048}, DType.BFLOAT16, dev));
            return () -> d.call("_C::silu_and_mul", out, x);
        }, (m, o) -> {
            Peers p = new Peers(m, o);
            return Peers.call(p.module("silu_and_mul"), p.bf16(256, 4096));
        }, "TorchScript silu(x[:d]) * x[d:], fresh output");
        op("softmax", "32x4096", "f32", 0, 2.0 * 32 * 4096 * 4, Peak.NONE, (d, dev, o) -> {
            Tensor x = rand(d, dev, o, DType.FLOAT32, 32, 4096);
            return () -> ((Tensor) d.call("aten::_softmax", x, -1L, false)).close();
        }, (m, o) -> {
            NDArray x = m.randomNormal(new Shape(32, 4096));
            return () -> x.softmax(-1).close();
        }, "softmax, fresh output");
        op("rotary_embedding", "512 tok, q 128x64, k 1x64, GPT-J style", "f32", 0, (2.0 * 512 * 129 * 64 + 512 * 64) * 4, Peak.NONE, (d, dev, o) -> {
            Tensor pos = longs(d, dev, o, 512, j -> (j * 7) % 4096, 512), q = rand(d, dev, o, DType.FLOAT32, 512, 128, 64);
            Tensor kk = rand(d, dev, o, DType.FLOAT32, 512, 1, 64), cache = floats(d, dev, o, cosSin(4096, 64), 4096, 64);
            return () -> d.call("_C::rotary_embedding", pos, q, kk, 64L, cache, false);
        }, (m, o) -> {
            Peers p = new Peers(m, o);
            long[] pos = new long[512];
            for (int j = 0; j < 512; j++) pos[j] = (j * 7) % 4096;
            return Peers.call(p.module("rotary"), p.i64(pos, 512), p.f32(512, 128, 64), p.f32(512, 1, 64),
                    p.of(m.create(cosSin(4096, 64), new Shape(4096, 64))));
        }, "TorchScript index, even/odd slices, mul, sub, add, stack; fresh outputs (SIPU in place)");
        for (int t : new int[] {64, 512}) {
            op("grouped_topk T=" + t, t + "x256 (8 groups, top-8)", "f32", 0, 0, Peak.NONE, (d, dev, o) -> {
                Tensor s = rand(d, dev, o, DType.FLOAT32, t, 256), b = rand(d, dev, o, DType.FLOAT32, 256);
                return () -> ((List<?>) d.call("_moe_C::grouped_topk", s, 8L, 4L, 8L, true, 2.5, b, 1L)).forEach(x -> ((Tensor) x).close());
            }, (m, o) -> {
                Peers p = new Peers(m, o);
                return Peers.call(p.module("grouped_topk"), p.f32(t, 256), p.f32(256), p.i64(8), p.i64(4), p.i64(8), p.f64(2.5));
            }, "TorchScript sigmoid, add, top-2 sum per group, topk, scatter mask, topk, gather, renormalize");
        }
        op("moe_align_block_size", "512 tok x top-8, 256 experts, block 64", "i32", 0, 0, Peak.NONE, (d, dev, o) -> {
            int tok = 512, top = 8, e = 256, block = 64, padded = tok * top + e * (block - 1);
            Tensor ids = ints(d, dev, o, tok * top, j -> (j * 37 + j / top) % e, tok, top);
            Tensor sorted = ints(d, dev, o, padded, j -> 0, padded), experts = ints(d, dev, o, padded / block, j -> 0, padded / block);
            Tensor post = ints(d, dev, o, 1, j -> 0, 1);
            return () -> d.call("_moe_C::moe_align_block_size", ids, (long) e, (long) block, sorted, experts, post);
        }, null, "n/a: a vLLM custom op with no libtorch counterpart");
        int e = 32, h = 2048, inter = 512, tok = 64, top = 8;
        double expertFlops = 2.0 * tok * top * 3 * h * inter;
        IntUnaryOperator route = j -> (j * 5 + j / top) % e;
        op("fused_experts", tok + " tok, top-8 of 32, H 2048, I 512", "bf16", expertFlops, 2.0 * (e * 3.0 * h * inter + 2.0 * tok * h), Peak.BF16, (d, dev, o) -> {
            Tensor x = rand(d, dev, o, DType.BFLOAT16, tok, h), w1 = rand(d, dev, o, DType.BFLOAT16, e, 2 * inter, h);
            Tensor w2 = rand(d, dev, o, DType.BFLOAT16, e, h, inter), tw = rand(d, dev, o, DType.FLOAT32, tok, top);
            Tensor ids = ints(d, dev, o, tok * top, route, tok, top);
            return () -> d.call("vllm::inplace_fused_experts", x, w1, w2, tw, ids);
        }, (m, o) -> {
            Peers p = new Peers(m, o);
            long[] ids = new long[tok * top];
            for (int j = 0; j < ids.length; j++) ids[j] = route.applyAsInt(j);
            return Peers.call(p.module("fused_experts"), p.bf16(tok, h), p.bf16(e, 2 * inter, h), p.bf16(e, h, inter), p.f32(tok, top), p.i64(ids, tok, top));
        }, "TorchScript per-expert gather, mm, silu*mul, mm, index_add; fresh output (SIPU in place)");
        op("fused_experts fp8", tok + " tok, top-8 of 32, H 2048, I 512, blocks 128", "e4m3", expertFlops,
                e * 3.0 * h * inter + 4.0 * tok * h, Peak.BF16, (d, dev, o) -> {
            Tensor x = rand(d, dev, o, DType.BFLOAT16, tok, h), w1 = rand(d, dev, o, DType.FLOAT8_E4M3FN, e, 2 * inter, h);
            Tensor w2 = rand(d, dev, o, DType.FLOAT8_E4M3FN, e, h, inter), tw = rand(d, dev, o, DType.FLOAT32, tok, top);
            Tensor s1 = rand(d, dev, o, DType.FLOAT32, e, 2 * inter / 128, h / 128), s2 = rand(d, dev, o, DType.FLOAT32, e, h / 128, inter / 128);
            Tensor ids = ints(d, dev, o, tok * top, route, tok, top);
            return () -> d.call("vllm::inplace_fused_experts", x, w1, w2, tw, ids, "silu", false, true, false, false, false, false, -1L, null,
                    s1, s2, null, null, null, null, new long[] {128, 128});
        }, (m, o) -> {
            Peers p = new Peers(m, o);
            long[] ids = new long[tok * top];
            for (int j = 0; j < ids.length; j++) ids[j] = route.applyAsInt(j);
            return Peers.call(p.module("fused_experts_fp8"), p.bf16(tok, h), p.e4m3(e, 2 * inter, h), p.e4m3(e, h, inter), p.f32(tok, top),
                    p.i64(ids, tok, top), p.f32(e, 2 * inter / 128, h / 128), p.f32(e, h / 128, inter / 128));
        }, "TorchScript dequantizes the weights to bf16 every call, then the bf16 chain");
        op("varlen attention prefill", "512 tok, 16 heads, d 128, causal", "bf16", 2.0 * 2 * 16 * 128 * 512 * 512 / 2, 4.0 * 512 * 16 * 128 * 2, Peak.BF16, (d, dev, o) -> {
            Tensor q = rand(d, dev, o, DType.BFLOAT16, 512, 16, 128), kk = rand(d, dev, o, DType.BFLOAT16, 512, 16, 128);
            Tensor v = rand(d, dev, o, DType.BFLOAT16, 512, 16, 128), cu = ints(d, dev, o, 2, j -> j * 512, 2);
            return () -> ((List<?>) d.call("_vllm_fa2_C::varlen_fwd", q, kk, v, null, cu, cu, null, null, null, null, 512L, 512L, 0.0,
                    0.088, false, true, -1L, -1L, 0.0, false, 0L, null)).forEach(x -> ((Tensor) x).close());
        }, (m, o) -> {
            Peers p = new Peers(m, o);
            return Peers.call(p.module("causal_attention"), p.bf16(512, 16, 128), p.bf16(512, 16, 128), p.bf16(512, 16, 128), p.own(IValue.from(0.088)));
        }, "TorchScript matmul, causal mask, fp32 softmax, matmul (torch 1.13 has no SDPA; computes the masked half too)");
        op("paged attention decode", "batch 8, context 1024, 16 heads, d 128", "bf16", 2.0 * 2 * 8 * 16 * 128 * 1024, 2.0 * 8 * 1024 * 16 * 128 * 2, Peak.BF16, (d, dev, o) -> {
            int b = 8, ctx = 1024, page = 16, blocks = b * ctx / page;
            Tensor q = rand(d, dev, o, DType.BFLOAT16, b, 16, 128), kc = rand(d, dev, o, DType.BFLOAT16, blocks, page, 16, 128);
            Tensor vc = rand(d, dev, o, DType.BFLOAT16, blocks, page, 16, 128), out = own(o, d.ops().empty(new long[] {b, 16, 128}, DType.BFLOAT16, dev));
            Tensor cu = ints(d, dev, o, b + 1, j -> j, b + 1), used = ints(d, dev, o, b, j -> ctx, b);
            Tensor table = ints(d, dev, o, blocks, j -> j, b, ctx / page);
            return () -> d.call("vllm::unified_attention", q, kc, vc, out, cu, 1L, used, (long) ctx, 0.088, true, new long[] {-1, -1}, table, 0.0);
        }, null, "n/a: paged attention has no libtorch op");
        op("embedding", "256 ids into 4096x7168", "f32", 0, 2.0 * 256 * 7168 * 4, Peak.NONE, (d, dev, o) -> {
            Tensor w = rand(d, dev, o, DType.FLOAT32, 4096, 7168), ids = longs(d, dev, o, 256, j -> (j * 977) % 4096, 256);
            return () -> ((Tensor) d.call("aten::embedding", w, ids)).close();
        }, (m, o) -> {
            Peers p = new Peers(m, o);
            long[] ids = new long[256];
            for (int j = 0; j < 256; j++) ids[j] = (j * 977) % 4096;
            return Peers.call(p.module("embedding"), p.f32(4096, 7168), p.i64(ids, 256));
        }, "TorchScript F.embedding, fresh output (table: 4096 of the 129280 vocab rows)");
        op("cat", "512x128x128 ++ 512x128x64 on dim -1", "f32", 0, 2.0 * 512 * 128 * 192 * 4, Peak.NONE, (d, dev, o) -> {
            Tensor a = rand(d, dev, o, DType.FLOAT32, 512, 128, 128), b = rand(d, dev, o, DType.FLOAT32, 512, 128, 64);
            return () -> d.ops().cat(List.of(a, b), -1).close();
        }, (m, o) -> {
            NDArray a = m.randomNormal(new Shape(512, 128, 128)), b = m.randomNormal(new Shape(512, 128, 64));
            return () -> a.concat(b, -1).close();
        }, "concat, fresh output");
        op("argmax", "8x129280", "f32", 0, 8.0 * 129280 * 4, Peak.NONE, (d, dev, o) -> {
            Tensor x = rand(d, dev, o, DType.FLOAT32, 8, 129280);
            return () -> ((Tensor) d.call("aten::argmax", x, -1L, false)).close();
        }, (m, o) -> {
            NDArray x = m.randomNormal(new Shape(8, 129280));
            return () -> x.argMax(-1).close();
        }, "argMax");
        op("topk k=8", "8x129280", "f32", 0, 8.0 * 129280 * 4, Peak.NONE, (d, dev, o) -> {
            Tensor x = rand(d, dev, o, DType.FLOAT32, 8, 129280);
            return () -> ((List<?>) d.call("aten::topk", x, 8L, -1L, true, true)).forEach(t -> ((Tensor) t).close());
        }, (m, o) -> {
            NDArray x = m.randomNormal(new Shape(8, 129280));
            return () -> x.topK(8, -1).forEach(NDArray::close);
        }, "topK");
        op("sort", "64x256", "f32", 0, 0, Peak.NONE, (d, dev, o) -> {
            Tensor x = rand(d, dev, o, DType.FLOAT32, 64, 256);
            return () -> ((List<?>) d.call("aten::sort", x, -1L, false)).forEach(t -> ((Tensor) t).close());
        }, (m, o) -> {
            NDArray x = m.randomNormal(new Shape(64, 256));
            return () -> x.sort(-1).close();
        }, "sort (values only)");
        op("copy", "4096x4096", "f32", 0, 2.0 * 4096 * 4096 * 4, Peak.NONE, (d, dev, o) -> {
            Tensor x = rand(d, dev, o, DType.FLOAT32, 4096, 4096), y = own(o, d.ops().empty(x.sizes(), DType.FLOAT32, dev));
            return () -> d.ops().copy_(y, x);
        }, (m, o) -> {
            NDArray x = m.randomNormal(new Shape(4096, 4096));
            return () -> x.duplicate().close();
        }, "duplicate, fresh output");
        op("cast f32->f16", "4096x4096", "f32", 0, 4096.0 * 4096 * 6, Peak.NONE, (d, dev, o) -> {
            Tensor x = rand(d, dev, o, DType.FLOAT32, 4096, 4096);
            return () -> d.ops().toDtype(x, DType.FLOAT16).close();
        }, (m, o) -> {
            NDArray x = m.randomNormal(new Shape(4096, 4096));
            return () -> x.toType(DataType.FLOAT16, true).close();
        }, "toType, fresh output");

        add(new Row("dispatch: boxed empty kernel", "aten::detach_ on a [16] tensor", "f32", Kind.OVERHEAD, 0, 0, Peak.NONE, (d, dev, o) -> {
            Tensor x = own(o, d.ops().empty(new long[] {16}, DType.FLOAT32, dev));
            return () -> d.call("aten::detach_", x);
        }, null, "argument binding, device inference, kernel lookup; libtorch n/a: its dispatcher is reached only through DJL's JNI, whose cost would dominate",
                List.of("sipu", "cpu")));
        add(new Row("FFM downcall", "sipu_get_num_threads()", "-", Kind.OVERHEAD, 0, 0, Peak.NONE, (d, dev, o) -> {
            NativeLibrary.ensureLoaded();
            return SipuKernels::sipu_get_num_threads;
        }, null, "a trivial C call through the jextract binding (SIPU only: CPU kernels are Java)", List.of("sipu")));
        boolean model = Files.isRegularFile(MODELS.resolve("deepseek-v3-tiny/config.json"));
        add(new Row("decode tiny DeepSeek-V3", "1 token at position 12, fp32, greedy", "f32", Kind.TOKENS, 0, 0, Peak.NONE, Rows::decode, null,
                model ? "forward over the KV cache, argmax, token to the host; no libtorch peer (the model runs on the library only)"
                        : "n/a: tiny model not found at " + MODELS.resolve("deepseek-v3-tiny") + " (-Dsipu.models.dir)",
                model ? List.of("sipu", "cpu") : List.of()));

        // the limits first, triads by size, so the table reads limits before what is measured against them
        Map<String, Row> ordered = new LinkedHashMap<>();
        ordered.put(FMA, ALL.get(FMA));
        ordered.put(BF16_DOT, ALL.get(BF16_DOT));
        ordered.put(AMX, ALL.get(AMX));
        TRIAD.values().forEach(r -> ordered.put(r.name(), r));
        ordered.putAll(ALL);
        ALL.clear();
        ALL.putAll(ordered);
    }

    /** The working-set key: two significant digits, so rows of about the same size share one triad. */
    static long workingSet(double bytes) {
        double mag = Math.pow(10, Math.floor(Math.log10(bytes)) - 1);
        return (long) (Math.round(bytes / mag) * mag);
    }

    static Row triadFor(double bytes) {
        long ws = workingSet(bytes);
        return TRIAD.computeIfAbsent(ws, w -> new Row(String.format(Locale.ROOT, "limit triad %s", size(w)), "a = b + s c, 3 x " + size(w / 3) + ", " + triadReps(w) + (triadReps(w) == 1 ? " pass" : " passes"), "f32",
                Kind.LIMIT, 0, 12.0 * (w / 12) * triadReps(w), Peak.NONE, (d, dev, o) -> triad(o, w / 12, triadReps(w)), null,
                "sipu_probe_triad (C), the working set of the rows that cite it", List.of("sipu")));
    }

    static Map<Long, Row> triads() { return TRIAD; }

    static String size(long bytes) {
        return bytes >= 1e6 ? String.format(Locale.ROOT, bytes >= 1e7 ? "%.0f MB" : "%.1f MB", bytes / 1e6)
                : String.format(Locale.ROOT, "%.0f kB", bytes / 1e3);
    }

    /**
     * Rounds per probe call: about 10 ms at this machine's peak, so that waking the OpenMP team (which
     * takes a scheduler slice on a busy machine) stays a small part of every call.
     */
    static final long PROBE_ITERS = 2_000_000;

    private static Runnable probe(boolean bf16) {
        NativeLibrary.ensureLoaded();
        return bf16 ? () -> SipuKernels.sipu_probe_dot_bf16(PROBE_ITERS) : () -> SipuKernels.sipu_probe_fma_f32(PROBE_ITERS);
    }

    /** AMX rounds per call: 65536 flops a round per thread, also about 10 ms. */
    static final long AMX_ITERS = 300_000;

    private static Runnable amx() {
        NativeLibrary.ensureLoaded();
        return () -> SipuKernels.sipu_probe_amx_bf16(AMX_ITERS);
    }

    /** Passes per triad call: about 256 MB of traffic, the same reasoning as {@link #PROBE_ITERS}. */
    static long triadReps(long workingSet) { return Math.max(1, Math.round(256e6 / workingSet)); }

    private static Runnable triad(List<AutoCloseable> o, long n, long reps) {
        NativeLibrary.ensureLoaded();
        MemorySegment[] abc = new MemorySegment[3];
        for (int i = 0; i < 3; i++) {
            MemorySegment p = SipuKernels.sipu_malloc(n * 4);
            if (p.address() == 0) throw new OutOfMemoryError("sipu_malloc(" + n * 4 + ")");
            p.reinterpret(n * 4).fill((byte) 0x3f); // 0.747f everywhere: normal numbers, pages touched before timing
            abc[i] = p;
            o.add(() -> SipuKernels.sipu_free(p));
        }
        return () -> SipuKernels.sipu_probe_triad(abc[0], abc[1], abc[2], n, 3.0f, reps);
    }

    /** One greedy decode step at a fixed position: the cache is cut back after each, so every call does the same work. */
    private static Runnable decode(Dispatcher d, Device dev, List<AutoCloseable> o) {
        long[] prompt = {175, 196, 537, 502, 579, 211, 919, 615, 348, 185, 398, 535};
        DeepseekV3 model;
        try {
            model = new DeepseekV3(MODELS.resolve("deepseek-v3-tiny"), DeepseekV3.Mode.FP32, d, dev, prompt.length + 1);
        } catch (java.io.IOException e) {
            throw new java.io.UncheckedIOException(e);
        }
        o.add(model);
        KvCache cache = model.newCache(prompt.length + 1);
        o.add(cache);
        try (Tensor t = tokens(d, dev, prompt); Tensor logits = model.forward(t, cache)) {
            logits.sizes();
        }
        long[] next = {prompt[prompt.length - 1]};
        return () -> {
            try (Tensor t = tokens(d, dev, next); Tensor logits = model.forward(t, cache);
                 Tensor id = (Tensor) d.call("aten::argmax", logits, -1L, false); Tensor host = d.to(id, Device.CPU)) {
                next[0] = host.data().getAtIndex(ValueLayout.JAVA_LONG, 0);
            }
            cache.truncate(prompt.length);
        };
    }

    private static Tensor tokens(Dispatcher d, Device dev, long[] ids) {
        try (Tensor host = Tensor.adopt(CpuMemory.allocate(ids.length * 8L), DType.INT64, ids.length)) {
            for (int i = 0; i < ids.length; i++) host.data().setAtIndex(ValueLayout.JAVA_LONG, i, ids[i]);
            return d.to(host, dev);
        }
    }

    /** The linear layout on both sides: x [m, k] times the transpose of a row-major weight [n, k]. */
    private static Torch torchMm(int m, int k, int n) {
        return (mgr, o) -> {
            NDArray a = mgr.randomNormal(new Shape(m, k)), w = mgr.randomNormal(new Shape(n, k)), wt = w.transpose();
            return () -> a.matMul(wt).close();
        };
    }

    private static Torch scriptMm(int m, int k, int n) {
        return (mgr, o) -> {
            Peers p = new Peers(mgr, o);
            PtSymbolBlock linear = p.module("linear");
            return Peers.call(linear, p.bf16(m, k), p.bf16(n, k));
        };
    }

    private static Runnable mm(Dispatcher d, Device dev, List<AutoCloseable> o, int m, int k, int n, DType t) {
        Tensor a = rand(d, dev, o, t, m, k), w = rand(d, dev, o, t, n, k), wt = own(o, d.ops().t(w));
        return () -> d.ops().mm(a, wt).close();
    }

    static Tensor own(List<AutoCloseable> o, Tensor t) {
        o.add(t);
        return t;
    }

    /** Uniform values in [-1, 1) (float8 in [-1, 1) too), made on the host and moved. */
    static Tensor rand(Dispatcher d, Device dev, List<AutoCloseable> o, DType t, long... shape) {
        long n = 1;
        for (long s : shape) n *= s;
        Tensor host = Tensor.adopt(CpuMemory.allocate(n * 4), DType.FLOAT32, shape);
        SplittableRandom rnd = new SplittableRandom(n);
        for (long i = 0; i < n; i++) host.data().setAtIndex(ValueLayout.JAVA_FLOAT, i, (float) (rnd.nextDouble() * 2 - 1));
        try (host; Tensor moved = d.to(host, dev)) {
            return own(o, t == DType.FLOAT32 ? d.ops().clone(moved) : d.ops().toDtype(moved, t));
        }
    }

    /**
     * A real rope table [positions, rot] (cos | sin, base 10000): the library rotates in place call
     * after call, and a table that is not a rotation would shrink the values into subnormals.
     */
    static float[] cosSin(int positions, int rot) {
        float[] t = new float[positions * rot];
        for (int p = 0; p < positions; p++)
            for (int i = 0; i < rot / 2; i++) {
                double angle = p * Math.pow(10000, -2.0 * i / rot);
                t[p * rot + i] = (float) Math.cos(angle);
                t[p * rot + rot / 2 + i] = (float) Math.sin(angle);
            }
        return t;
    }

    static Tensor floats(Dispatcher d, Device dev, List<AutoCloseable> o, float[] v, long... shape) {
        Tensor host = Tensor.adopt(CpuMemory.allocate(v.length * 4L), DType.FLOAT32, shape);
        try (host) {
            for (int i = 0; i < v.length; i++) host.data().setAtIndex(ValueLayout.JAVA_FLOAT, i, v[i]);
            return own(o, d.to(host, dev));
        }
    }

    static Tensor ints(Dispatcher d, Device dev, List<AutoCloseable> o, int n, IntUnaryOperator f, long... shape) {
        Tensor host = Tensor.adopt(CpuMemory.allocate(n * 4L), DType.INT32, shape);
        try (host) {
            for (int i = 0; i < n; i++) host.data().setAtIndex(ValueLayout.JAVA_INT, i, f.applyAsInt(i));
            return own(o, d.to(host, dev));
        }
    }

    static Tensor longs(Dispatcher d, Device dev, List<AutoCloseable> o, int n, IntUnaryOperator f, long... shape) {
        Tensor host = Tensor.adopt(CpuMemory.allocate(n * 8L), DType.INT64, shape);
        try (host) {
            for (int i = 0; i < n; i++) host.data().setAtIndex(ValueLayout.JAVA_LONG, i, f.applyAsInt(i));
            return own(o, d.to(host, dev));
        }
    }

    static List<String> names() { return new ArrayList<>(ALL.keySet()); }
}
