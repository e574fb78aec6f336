package dev.sipu.cpu.gemm;

import dev.sipu.cpu.iter.Parallel;
import dev.sipu.cpu.simd.Floats;
import dev.sipu.cpu.simd.Vec;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorSpecies;

import java.util.Arrays;
import java.util.function.IntConsumer;

/**
 * C = A·B for fp32, fp16 and bf16 operands: fp32 products accumulated in fp32, rounded once into
 * C's dtype. Cache-blocked in the manner of BLIS/GotoBLAS:
 *
 * <pre>
 *   task = (batch, block of MB rows of C, block of NB columns of C)     -- independent, run in parallel
 *     for each depth block of KC:
 *       pack B[KC x NB] into panels of NR columns  (bf16/fp16 widened here, once per block)
 *       pack A[MB x KC] into panels of MR rows
 *       for each B panel (stays in L1), for each A panel (streams from L2):
 *         MR x NR micro-kernel: KC rank-1 updates with broadcast-A x vector-B FMAs in registers
 *   round the fp32 block of C once into C's dtype
 * </pre>
 *
 * Packing reads any strides (transposed operands are read along their contiguous dimension) and
 * pads partial panels with zeros, so the micro-kernel has no edge cases.
 */
public final class Fp32Gemm {
    private Fp32Gemm() {}

    private static final VectorSpecies<Float> S = Vec.S;
    private static final int L = Vec.LANES;
    /** Rows per micro-tile: 4 rows x 2 vectors = 8 accumulators, within 16 vector registers. */
    static final int MR = 4;
    static final int NR = 2 * L;
    static final int KC = 256;
    static final int MB = 128;
    static final int NB = 256;
    /** Multiply-adds below which threads cost more than they save. */
    private static final long PARALLEL_WORK = 1L << 21;

    public static void multiply(Matrix a, Matrix b, Matrix c, int batches) {
        int m = a.rows(), k = a.cols(), n = b.cols();
        if (m == 0 || n == 0) return;
        int rowBlocks = (m + MB - 1) / MB, colBlocks = (n + NB - 1) / NB, perBatch = rowBlocks * colBlocks;
        int tasks = Math.multiplyExact(batches, perBatch);
        IntConsumer task = t -> block(a, b, c, t / perBatch, t % perBatch / colBlocks * MB, t % colBlocks * NB, k);
        if ((long) batches * m * n * k >= PARALLEL_WORK) {
            Parallel.forEach(tasks, task);
        } else {
            for (int t = 0; t < tasks; t++) task.accept(t);
        }
    }

    /** C[i0 : i0+MB, j0 : j0+NB] of batch bi, over the whole depth k. */
    private static void block(Matrix a, Matrix b, Matrix c, int bi, int i0, int j0, int k) {
        int mb = Math.min(MB, a.rows() - i0), nb = Math.min(NB, b.cols() - j0);
        int mp = (mb + MR - 1) / MR * MR, np = (nb + NR - 1) / NR * NR;
        int kc0 = Math.min(KC, k);
        float[] acc = new float[mp * np];
        float[] ap = new float[mp * kc0], bp = new float[kc0 * np];
        float[] line = new float[Math.max(Math.max(mp, np), kc0)];
        for (int p0 = 0; p0 < k; p0 += KC) {
            int kc = Math.min(KC, k - p0);
            packB(b, bi, p0, kc, j0, nb, np, bp, line);
            packA(a, bi, i0, mb, mp, p0, kc, ap, line);
            for (int jp = 0; jp < np; jp += NR) {
                for (int ip = 0; ip < mp; ip += MR) {
                    microKernel(ap, ip * kc, bp, jp * kc, kc, acc, ip * np + jp, np);
                }
            }
        }
        for (int i = 0; i < mb; i++) {
            Floats.store(acc, i * np, nb, c.dtype(), c.memory(), c.at(bi, i0 + i, j0), c.colStride());
        }
    }

    /**
     * acc[MR x NR tile at co, row stride ldc] += A panel (kc x MR, interleaved by row) x B panel
     * (kc x NR). The accumulators are named variables so that they stay in registers.
     */
    private static void microKernel(float[] ap, int ao, float[] bp, int bo, int kc, float[] acc, int co, int ldc) {
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
        addTo(acc, co, c00, c01);
        addTo(acc, co + ldc, c10, c11);
        addTo(acc, co + 2 * ldc, c20, c21);
        addTo(acc, co + 3 * ldc, c30, c31);
    }

    private static void addTo(float[] acc, int at, FloatVector lo, FloatVector hi) {
        FloatVector.fromArray(S, acc, at).add(lo).intoArray(acc, at);
        FloatVector.fromArray(S, acc, at + L).add(hi).intoArray(acc, at + L);
    }

    /** bp[(jp*kc + p)*NR... ] = B[p0 + p, j0 + j] for j < nb, zero up to np. */
    private static void packB(Matrix b, int bi, int p0, int kc, int j0, int nb, int np, float[] bp, float[] line) {
        long item = b.dtype().itemSize();
        if (b.rowStride() == item && b.colStride() != item) {
            // Contiguous along k (a transposed B, e.g. linear's weight): read columns.
            for (int j = 0; j < np; j++) {
                int panel = j / NR * kc * NR + j % NR;
                if (j < nb) Floats.load(b.dtype(), b.memory(), b.at(bi, p0, j0 + j), b.rowStride(), line, 0, kc);
                else Arrays.fill(line, 0, kc, 0f);
                for (int p = 0; p < kc; p++) bp[panel + p * NR] = line[p];
            }
        } else {
            for (int p = 0; p < kc; p++) {
                Floats.load(b.dtype(), b.memory(), b.at(bi, p0 + p, j0), b.colStride(), line, 0, nb);
                Arrays.fill(line, nb, np, 0f);
                for (int jp = 0; jp < np; jp += NR) System.arraycopy(line, jp, bp, jp * kc + p * NR, NR);
            }
        }
    }

    /** ap[(ip*kc + p)*MR + r] = A[i0 + ip + r, p0 + p] for rows below mb, zero up to mp. */
    private static void packA(Matrix a, int bi, int i0, int mb, int mp, int p0, int kc, float[] ap, float[] line) {
        long item = a.dtype().itemSize();
        if (a.rowStride() == item && a.colStride() != item) {
            // Contiguous along m (a transposed A): read columns.
            for (int p = 0; p < kc; p++) {
                Floats.load(a.dtype(), a.memory(), a.at(bi, i0, p0 + p), a.rowStride(), line, 0, mb);
                Arrays.fill(line, mb, mp, 0f);
                for (int i = 0; i < mp; i++) ap[i / MR * kc * MR + p * MR + i % MR] = line[i];
            }
        } else {
            for (int i = 0; i < mp; i++) {
                int panel = i / MR * kc * MR + i % MR;
                if (i < mb) Floats.load(a.dtype(), a.memory(), a.at(bi, i0 + i, p0), a.colStride(), line, 0, kc);
                else Arrays.fill(line, 0, kc, 0f);
                for (int p = 0; p < kc; p++) ap[panel + p * MR] = line[p];
            }
        }
    }
}
