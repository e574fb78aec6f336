package dev.sipu.cpu.simd;

import dev.sipu.api.Conversions;
import dev.sipu.api.DType;
import org.junit.jupiter.api.Test;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertEquals;

/** The vector conversions are bit-exact with the scalar ones of {@link Conversions} (PyTorch's c10). */
class FloatsTest {

    private static final ValueLayout.OfShort I16 = ValueLayout.JAVA_SHORT_UNALIGNED;

    /** Every 16-bit pattern, as a contiguous run (vector body) and one by one (scalar tail). */
    @Test
    void everyBf16AndF16PatternWidensExactly() {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment m = arena.allocate(2 * 65536);
            for (int i = 0; i < 65536; i++) m.setAtIndex(ValueLayout.JAVA_SHORT, i, (short) i);
            float[] bf = new float[65536], f16 = new float[65536];
            Floats.load(DType.BFLOAT16, m, 0, 2, bf, 0, 65536);
            Floats.load(DType.FLOAT16, m, 0, 2, f16, 0, 65536);
            for (int i = 0; i < 65536; i++) {
                assertEquals(Float.floatToRawIntBits(Conversions.bf16ToFloat((short) i)), Float.floatToRawIntBits(bf[i]), "bf16 " + i);
                assertEquals(Float.floatToRawIntBits(Conversions.f16ToFloat((short) i)), Float.floatToRawIntBits(f16[i]), "f16 " + i);
            }
        }
    }

    /**
     * Narrowing agrees with Conversions on every interesting float: each bf16/fp16 value, its
     * neighbours one fp32 ulp away and the midpoints to the next value (the ties), infinities and
     * NaNs with payloads, and random bit patterns over all exponents.
     */
    @Test
    void narrowingRoundsToNearestEvenExactly() {
        float[] probe = probes();
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment bf = arena.allocate(2L * probe.length), f16 = arena.allocate(2L * probe.length);
            Floats.store(probe, 0, probe.length, DType.BFLOAT16, bf, 0, 2);
            Floats.store(probe, 0, probe.length, DType.FLOAT16, f16, 0, 2);
            float[] roundBf = probe.clone(), roundF16 = probe.clone();
            Floats.round(roundBf, 0, probe.length, DType.BFLOAT16);
            Floats.round(roundF16, 0, probe.length, DType.FLOAT16);
            for (int i = 0; i < probe.length; i++) {
                float f = probe[i];
                short eb = Conversions.floatToBf16(f), eh = Conversions.floatToF16(f);
                assertEquals(eb, bf.getAtIndex(I16, i), () -> "bf16 of " + f + " / " + Integer.toHexString(Float.floatToRawIntBits(f)));
                assertEquals(eh, f16.getAtIndex(I16, i), () -> "f16 of " + f + " / " + Integer.toHexString(Float.floatToRawIntBits(f)));
                assertEquals(Float.floatToRawIntBits(Conversions.bf16ToFloat(eb)), Float.floatToRawIntBits(roundBf[i]), "round bf16 " + f);
                assertEquals(Float.floatToRawIntBits(Conversions.f16ToFloat(eh)), Float.floatToRawIntBits(roundF16[i]), "round f16 " + f);
            }
        }
    }

    private static float[] probes() {
        java.util.List<Float> p = new java.util.ArrayList<>();
        for (int h = 0; h < 65536; h++) {
            for (float v : new float[] {Conversions.bf16ToFloat((short) h), Conversions.f16ToFloat((short) h)}) {
                if (Float.isNaN(v) || Float.isInfinite(v)) continue;
                p.add(v);
                p.add(Math.nextUp(v));
                p.add(Math.nextDown(v));
            }
            float a = Conversions.bf16ToFloat((short) h), b = Conversions.bf16ToFloat((short) (h + 1));
            if (Float.isFinite(a) && Float.isFinite(b)) p.add((a + b) / 2);
            a = Conversions.f16ToFloat((short) h);
            b = Conversions.f16ToFloat((short) (h + 1));
            if (Float.isFinite(a) && Float.isFinite(b)) p.add((a + b) / 2);
        }
        for (float v : new float[] {Float.POSITIVE_INFINITY, Float.NEGATIVE_INFINITY, Float.NaN, -Float.NaN,
                Float.intBitsToFloat(0x7F800001), Float.intBitsToFloat(0xFFC12345), Float.MAX_VALUE, -Float.MAX_VALUE,
                Float.MIN_VALUE, 65504f, 65519.99f, 65520f, 0x1p-25f, 0x1p-24f, 0x1.8p-25f, -0f}) {
            p.add(v);
        }
        SplittableRandom r = new SplittableRandom(7);
        for (int i = 0; i < 200_000; i++) p.add(Float.intBitsToFloat(r.nextInt()));
        // An odd count leaves a scalar tail after the vector body.
        if (p.size() % 2 == 0) p.add(1f);
        float[] out = new float[p.size()];
        for (int i = 0; i < out.length; i++) out[i] = p.get(i);
        return out;
    }

    @Test
    void stridedAndBroadcastRunsOfEveryDtype() {
        SplittableRandom r = new SplittableRandom(3);
        for (DType t : DType.values()) {
            try (Arena arena = Arena.ofConfined()) {
                int n = 37;
                long stride = 3L * t.itemSize();
                MemorySegment m = arena.allocate(stride * n + 8);
                float[] src = new float[n];
                for (int i = 0; i < n; i++) src[i] = t.isBool() ? r.nextInt(2) : r.nextInt(-8, 8) * 0.5f;
                if (t.isIntegral()) for (int i = 0; i < n; i++) src[i] = Math.abs((int) src[i]);
                Floats.store(src, 0, n, t, m, 0, stride);
                float[] back = new float[n];
                Floats.load(t, m, 0, stride, back, 0, n);
                for (int i = 0; i < n; i++) assertEquals(src[i], back[i], t + " element " + i);
                Floats.load(t, m, stride, 0, back, 0, n);
                for (int i = 0; i < n; i++) assertEquals(src[1], back[i], t + " broadcast element " + i);
            }
        }
    }
}
