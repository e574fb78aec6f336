package dev.sipu.cpu.kernels;

import dev.sipu.api.DType;
import dev.sipu.api.Elements;
import dev.sipu.api.Tensor;
import dev.sipu.cpu.iter.StridedLoop;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;

/**
 * Typed elementwise loops over {@link StridedLoop}: one generic path by compute category (double for
 * floating results, long for integers, boolean for bool; narrow floats round once when stored) and
 * Vector API fast paths for contiguous float32 runs.
 */
final class Loops {
    private Loops() {}

    static final VectorSpecies<Float> F = FloatVector.SPECIES_PREFERRED;
    static final ValueLayout.OfFloat F32 = ValueLayout.JAVA_FLOAT_UNALIGNED;

    /** A binary function in each compute category. */
    interface Binary {
        double applyDouble(double a, double b);
        long applyLong(long a, long b);
        boolean applyBool(boolean a, boolean b);
        /** The float32 vector form, or null when there is none. */
        default FloatVector applyVector(FloatVector a, FloatVector b) { return null; }
    }

    /** A unary function in each compute category. */
    interface Unary {
        double applyDouble(double a);
        long applyLong(long a);
        default FloatVector applyVector(FloatVector a) { return null; }
    }

    private static boolean contiguousF32(Tensor[] ops, long[] strides) {
        for (int k = 0; k < ops.length; k++) if (ops[k].dtype() != DType.FLOAT32 || strides[k] != 4) return false;
        return true;
    }

    /** out = f(a, b) elementwise; a and b are views with out's shape. */
    static void binary(Tensor out, Tensor a, Tensor b, Binary f) {
        Tensor[] ops = {out, a, b};
        MemorySegment mo = out.storage().memory(), ma = a.storage().memory(), mb = b.storage().memory();
        DType to = out.dtype(), ta = a.dtype(), tb = b.dtype();
        boolean vector = f.applyVector(FloatVector.zero(F), FloatVector.zero(F)) != null;
        StridedLoop.forEach(ops, (off, st, n) -> {
            long i = 0, oo = off[0], oa = off[1], ob = off[2];
            if (vector && contiguousF32(ops, st)) {
                for (long bound = F.loopBound(n); i < bound; i += F.length()) {
                    FloatVector va = FloatVector.fromMemorySegment(F, ma, oa + 4 * i, ByteOrder.nativeOrder());
                    FloatVector vb = FloatVector.fromMemorySegment(F, mb, ob + 4 * i, ByteOrder.nativeOrder());
                    f.applyVector(va, vb).intoMemorySegment(mo, oo + 4 * i, ByteOrder.nativeOrder());
                }
            }
            for (; i < n; i++) {
                long po = oo + i * st[0], pa = oa + i * st[1], pb = ob + i * st[2];
                if (to.isFloatingPoint()) {
                    Elements.putDouble(mo, po, to, f.applyDouble(Elements.getDouble(ma, pa, ta), Elements.getDouble(mb, pb, tb)));
                } else if (to.isBool()) {
                    boolean r = f.applyBool(Elements.getLong(ma, pa, ta) != 0, Elements.getLong(mb, pb, tb) != 0);
                    Elements.putLong(mo, po, to, r ? 1 : 0);
                } else {
                    Elements.putLong(mo, po, to, f.applyLong(Elements.getLong(ma, pa, ta), Elements.getLong(mb, pb, tb)));
                }
            }
        });
    }

    /** out = f(a) elementwise; a is a view with out's shape. */
    static void unary(Tensor out, Tensor a, Unary f) {
        Tensor[] ops = {out, a};
        MemorySegment mo = out.storage().memory(), ma = a.storage().memory();
        DType to = out.dtype(), ta = a.dtype();
        boolean vector = f.applyVector(FloatVector.zero(F)) != null;
        StridedLoop.forEach(ops, (off, st, n) -> {
            long i = 0, oo = off[0], oa = off[1];
            if (vector && contiguousF32(ops, st)) {
                for (long bound = F.loopBound(n); i < bound; i += F.length()) {
                    FloatVector va = FloatVector.fromMemorySegment(F, ma, oa + 4 * i, ByteOrder.nativeOrder());
                    f.applyVector(va).intoMemorySegment(mo, oo + 4 * i, ByteOrder.nativeOrder());
                }
            }
            for (; i < n; i++) {
                long po = oo + i * st[0], pa = oa + i * st[1];
                if (to.isFloatingPoint()) Elements.putDouble(mo, po, to, f.applyDouble(Elements.getDouble(ma, pa, ta)));
                else Elements.putLong(mo, po, to, f.applyLong(Elements.getLong(ma, pa, ta)));
            }
        });
    }

    /** dst = src converted to dst's dtype (src already has dst's shape). */
    static void copy(Tensor dst, Tensor src) {
        Tensor[] ops = {dst, src};
        MemorySegment md = dst.storage().memory(), ms = src.storage().memory();
        DType td = dst.dtype(), ts = src.dtype();
        int item = td.itemSize();
        boolean floating = td.isFloatingPoint() || ts.isFloatingPoint();
        StridedLoop.forEach(ops, (off, st, n) -> {
            if (td == ts && st[0] == item && st[1] == item) {
                MemorySegment.copy(ms, off[1], md, off[0], n * item);
                return;
            }
            for (long i = 0; i < n; i++) {
                long pd = off[0] + i * st[0], ps = off[1] + i * st[1];
                if (td == ts) MemorySegment.copy(ms, ps, md, pd, item);
                else if (floating) Elements.putDouble(md, pd, td, Elements.getDouble(ms, ps, ts));
                else Elements.putLong(md, pd, td, Elements.getLong(ms, ps, ts));
            }
        });
    }

    static FloatVector sigmoid(FloatVector x) {
        FloatVector one = FloatVector.broadcast(F, 1f);
        return one.div(one.add(x.neg().lanewise(VectorOperators.EXP)));
    }
}
