package dev.sipu.cpu.simd;

import dev.sipu.api.Conversions;
import org.junit.jupiter.api.Test;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertEquals;

/** The e4m3 table and the vector saturating encoder agree with {@link Conversions} (c10) bit for bit. */
class E4m3Test {

    @Test
    void everyCodeDecodesAsConversionsDoes() {
        for (int i = 0; i < 256; i++) {
            assertEquals(Float.floatToRawIntBits(Conversions.e4m3ToFloat((byte) i)), Float.floatToRawIntBits(E4m3.decode((byte) i)), "code " + i);
        }
    }

    /**
     * Every e4m3 value, its fp32 neighbours and the midpoints to the next code (ties), values past
     * 448 and 464 (saturated, where c10's own conversion gives NaN), infinities, NaNs of both signs,
     * the subnormal range and random bit patterns: the vector body and the scalar tail both give
     * c10's code of the value clamped to ±448, and 0x7F for every NaN.
     */
    @Test
    void saturatingEncodeIsClampThenRoundToNearestEven() {
        List<Float> p = new ArrayList<>();
        for (int i = 0; i < 256; i++) {
            float v = Conversions.e4m3ToFloat((byte) i), next = Conversions.e4m3ToFloat((byte) (i + 1));
            p.add(v);
            p.add(Math.nextUp(v));
            p.add(Math.nextDown(v));
            if (!Float.isNaN(next) && (i & 0x7F) != 0x7F) p.add((v + next) / 2);
        }
        for (float v : new float[] {448, 449, 464, 465, 479, 480, 1e4f, 3.4e38f, Float.POSITIVE_INFINITY, 0x1p-10f, 0x1.8p-10f, 0x1p-12f, 0, -0f,
                Float.NaN, Float.intBitsToFloat(0xFFC00001), Float.MIN_VALUE}) {
            p.add(v);
            p.add(-v);
        }
        SplittableRandom rnd = new SplittableRandom(5);
        for (int i = 0; i < 20000; i++) p.add(Float.intBitsToFloat(rnd.nextInt()));
        float[] probe = new float[p.size()];
        for (int i = 0; i < probe.length; i++) probe[i] = p.get(i);
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment m = arena.allocate(probe.length);
            E4m3.storeSaturating(probe, 0, probe.length, m, 0);
            for (int i = 0; i < probe.length; i++) {
                float f = probe[i];
                byte want = Float.isNaN(f) ? 0x7F : Conversions.floatToE4m3(Math.max(-448f, Math.min(448f, f)));
                assertEquals(want, m.get(ValueLayout.JAVA_BYTE, i), () -> "code of " + f + " / " + Integer.toHexString(Float.floatToRawIntBits(f)));
                assertEquals(want, E4m3.encodeSaturating(f), () -> "scalar code of " + f);
            }
        }
    }
}
