package dev.sipu.cpu.gemm;

import dev.sipu.api.DType;
import dev.sipu.api.Tensor;
import dev.sipu.cpu.iter.Parallel;
import dev.sipu.cpu.simd.E4m3;
import dev.sipu.cpu.simd.Floats;
import dev.sipu.cpu.simd.Vec;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorSpecies;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.Arrays;
import java.util.function.IntConsumer;

/**
 * DeepSeek's block-scaled fp8 GEMM: out[m, n] = sum over 128-wide K blocks kb of
 * (sum_k a[m, k] * b[n, k]) * a_s[m, kb] * b_s[n / 128, kb], in fp32, rounded once to bf16.
 *
 * <p>The same sums in the same order as the C kernel, so both agree bit for bit: a product of two
 * e4m3 values has at most 8 significant bits and is exact in fp32 (so an FMA rounds exactly as a
 * multiply then an add does), each block's partial sum runs over k in ascending order, and the
 * scaled partials are added block after block. The vectors therefore run across N (one lane per
 * output column), never across K.
 *
 * <pre>
 *   task = (block of MB rows, block of 128 columns: one row of b_s)      -- run in parallel
 *     for each 128-deep K block:
 *       decode B[128 columns x 128] into panels of NR columns, A[MB x 128] into panels of MR rows
 *       MR x NR micro-kernel: 128 rank-1 updates (broadcast a x vector b) into zeroed registers,
 *       then acc += (part * a_s[m]) * b_s
 *   round the block of acc to bf16
 * </pre>
 */
public final class Fp8Gemm {
    private Fp8Gemm() {}

    /** a [M, K] e4m3, a_s [M, K/128] fp32, b [N, K] e4m3, b_s [ceil(N/128), K/128] fp32, out [M, N] bf16; all contiguous. */
    public record Operands(Tensor a, Tensor aScale, Tensor b, Tensor bScale, Tensor out) {}

    private static final VectorSpecies<Float> S = Vec.S;
    private static final int L = Vec.LANES;
    private static final int MR = 4;
    private static final int NR = 2 * L;
    /** The scale block: K blocks and column blocks are this wide. */
    private static final int BLOCK = 128;
    private static final int MB = 64;
    private static final long PARALLEL_WORK = 1L << 21;
    private static final ValueLayout.OfFloat F32 = ValueLayout.JAVA_FLOAT_UNALIGNED;

    public static void multiply(Operands o, int m, int n, int k) {
        if (m == 0 || n == 0) return;
        int rowBlocks = (m + MB - 1) / MB, colBlocks = (n + BLOCK - 1) / BLOCK;
        IntConsumer task = t -> block(o, m, n, k, t / colBlocks * MB, t % colBlocks * BLOCK);
        int tasks = rowBlocks * colBlocks;
        if ((long) m * n * k >= PARALLEL_WORK) {
            Parallel.forEach(tasks, task);
        } else {
            for (int t = 0; t < tasks; t++) task.accept(t);
        }
    }

    /** out[i0 : i0+MB, j0 : j0+128] over the whole depth. */
    private static void block(Operands o, int m, int n, int k, int i0, int j0) {
        int mb = Math.min(MB, m - i0), nb = Math.min(BLOCK, n - j0);
        int mp = (mb + MR - 1) / MR * MR, np = (nb + NR - 1) / NR * NR;
        int kBlocks = (k + BLOCK - 1) / BLOCK;
        float[] acc = new float[mp * np], ap = new float[mp * BLOCK], bp = new float[BLOCK * np];
        float[] line = new float[BLOCK], rowScale = new float[mp];
        MemorySegment asm = o.aScale().storage().memory(), bsm = o.bScale().storage().memory();
        for (int kb = 0; kb < kBlocks; kb++) {
            int p0 = kb * BLOCK, kc = Math.min(BLOCK, k - p0);
            packB(o.b(), k, j0, nb, np, p0, kc, bp, line);
            packA(o.a(), k, i0, mb, mp, p0, kc, ap, line);
            for (int i = 0; i < mb; i++) {
                rowScale[i] = asm.get(F32, o.aScale().byteOffset() + 4L * ((long) (i0 + i) * kBlocks + kb));
            }
            float colScale = bsm.get(F32, o.bScale().byteOffset() + 4L * ((long) (j0 / BLOCK) * kBlocks + kb));
            for (int jp = 0; jp < np; jp += NR) {
                for (int ip = 0; ip < mp; ip += MR) {
                    microKernel(ap, ip * kc, bp, jp * kc, kc, acc, ip * np + jp, np, rowScale, ip, colScale);
                }
            }
        }
        Tensor out = o.out();
        for (int i = 0; i < mb; i++) {
            Floats.store(acc, i * np, nb, DType.BFLOAT16, out.storage().memory(), out.byteOffset() + 2L * ((long) (i0 + i) * n + j0), 2);
        }
    }

    /**
     * acc[MR x NR tile at co] += (part * rowScale[r]) * colScale, part = A panel (kc x MR) x B panel
     * (kc x NR) summed over p ascending from zero in registers.
     */
    private static void microKernel(float[] ap, int ao, float[] bp, int bo, int kc, float[] acc, int co, int ldc,
                                    float[] rowScale, int r0, float colScale) {
        FloatVector c00 = FloatVector.zero(S), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00, c30 = c00, c31 = c00;
        for (int p = 0; p < kc; p++, ao += MR, bo += NR) {
            FloatVector b0 = FloatVector.fromArray(S, bp, bo), b1 = FloatVector.fromArray(S, bp, bo + L);
            FloatVector x = FloatVector.broadcast(S, ap[ao]);
            c00 = x.fma(b0, c00);
            c01 = x.fma(b1, c01);
            x = FloatVector.broadcast(S, ap[ao + 1]);
            c10 = x.fma(b0, c10);
            c11 = x.fma(b1, c11);
            x = FloatVector.broadcast(S, ap[ao + 2]);
            c20 = x.fma(b0, c20);
            c21 = x.fma(b1, c21);
            x = FloatVector.broadcast(S, ap[ao + 3]);
            c30 = x.fma(b0, c30);
            c31 = x.fma(b1, c31);
        }
        addScaled(acc, co, c00, c01, rowScale[r0], colScale);
        addScaled(acc, co + ldc, c10, c11, rowScale[r0 + 1], colScale);
        addScaled(acc, co + 2 * ldc, c20, c21, rowScale[r0 + 2], colScale);
        addScaled(acc, co + 3 * ldc, c30, c31, rowScale[r0 + 3], colScale);
    }

    private static void addScaled(float[] acc, int at, FloatVector lo, FloatVector hi, float rowScale, float colScale) {
        FloatVector.fromArray(S, acc, at).add(lo.mul(rowScale).mul(colScale)).intoArray(acc, at);
        FloatVector.fromArray(S, acc, at + L).add(hi.mul(rowScale).mul(colScale)).intoArray(acc, at + L);
    }

    /** bp[jp*kc + p*NR + j % NR] = b[j0 + j, p0 + p] decoded, for j < nb; zero columns up to np. */
    private static void packB(Tensor b, int k, int j0, int nb, int np, int p0, int kc, float[] bp, float[] line) {
        MemorySegment m = b.storage().memory();
        for (int j = 0; j < np; j++) {
            int panel = j / NR * kc * NR + j % NR;
            if (j < nb) E4m3.decode(m, b.byteOffset() + (long) (j0 + j) * k + p0, line, 0, kc);
            else Arrays.fill(line, 0, kc, 0f);
            for (int p = 0; p < kc; p++) bp[panel + p * NR] = line[p];
        }
    }

    /** ap[ip*kc + p*MR + i % MR] = a[i0 + i, p0 + p] decoded, for i < mb; zero rows up to mp. */
    private static void packA(Tensor a, int k, int i0, int mb, int mp, int p0, int kc, float[] ap, float[] line) {
        MemorySegment m = a.storage().memory();
        for (int i = 0; i < mp; i++) {
            int panel = i / MR * kc * MR + i % MR;
            if (i < mb) E4m3.decode(m, a.byteOffset() + (long) (i0 + i) * k + p0, line, 0, kc);
            else Arrays.fill(line, 0, kc, 0f);
            for (int p = 0; p < kc; p++) ap[panel + p * MR] = line[p];
        }
    }
}
