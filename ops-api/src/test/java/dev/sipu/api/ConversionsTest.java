package dev.sipu.api;

import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

class ConversionsTest {

    private static float e4m3(float x) { return Conversions.e4m3ToFloat(Conversions.floatToE4m3(x)); }

    @Test
    void e4m3IsPyTorchsNonSaturatingCast() {
        // Values recorded from torch 2.11 (SEMANTICS.md §0.2).
        assertEquals(448f, e4m3(447f));
        assertEquals(448f, e4m3(460f));
        assertEquals(448f, e4m3(463.9f));
        assertEquals(448f, e4m3(464f));
        for (float v : new float[] {470f, 479f, 480f, 1e4f, Float.POSITIVE_INFINITY, -500f, Float.NaN}) {
            assertTrue(Float.isNaN(e4m3(v)), "expected NaN for " + v);
        }
        assertEquals(0f, e4m3(0x1p-10f));
        assertEquals(0x1p-9f, e4m3(0.75f * 0x1p-9f));
        assertEquals(-448f, e4m3(-448f));
    }

    @Test
    void everyE4m3CodeRoundTrips() {
        for (int b = 0; b < 256; b++) {
            float f = Conversions.e4m3ToFloat((byte) b);
            if (Float.isNaN(f)) {
                assertEquals(0x7F, b & 0x7F);
                continue;
            }
            assertEquals((byte) b, Conversions.floatToE4m3(f), "code " + b);
        }
        assertEquals(448f, Conversions.e4m3ToFloat((byte) 0x7E));
        assertEquals(0x1p-9f, Conversions.e4m3ToFloat((byte) 0x01));
    }

    @Test
    void everyE5m2CodeRoundTripsAndOverflowIsInfinity() {
        for (int b = 0; b < 256; b++) {
            float f = Conversions.e5m2ToFloat((byte) b);
            if (Float.isNaN(f)) continue;
            assertEquals((byte) b, Conversions.floatToE5m2(f), "code " + b);
        }
        assertEquals(Float.POSITIVE_INFINITY, Conversions.e5m2ToFloat(Conversions.floatToE5m2(1e6f)));
        assertEquals(57344f, Conversions.e5m2ToFloat(Conversions.floatToE5m2(57344f)));
        assertTrue(Float.isNaN(Conversions.e5m2ToFloat(Conversions.floatToE5m2(Float.NaN))));
    }

    @Test
    void bf16RoundsToNearestEven() {
        // 1 + 2^-8 is halfway between 1 and 1 + 2^-7: ties to the even mantissa (1.0).
        assertEquals(1f, Conversions.bf16ToFloat(Conversions.floatToBf16(1f + 0x1p-8f)));
        assertEquals(1f + 0x1p-6f, Conversions.bf16ToFloat(Conversions.floatToBf16(1f + 0x1p-7f + 0x1p-8f)));
        assertEquals((short) 0x7FC0, Conversions.floatToBf16(Float.NaN));
        assertEquals(Float.POSITIVE_INFINITY, Conversions.bf16ToFloat(Conversions.floatToBf16(Float.MAX_VALUE)));
        for (int b = 0; b < 65536; b++) {
            float f = Conversions.bf16ToFloat((short) b);
            if (!Float.isNaN(f)) assertEquals((short) b, Conversions.floatToBf16(f));
        }
    }

    @Test
    void f16RoundTripsAndRounds() {
        for (int b = 0; b < 65536; b++) {
            float f = Conversions.f16ToFloat((short) b);
            if (!Float.isNaN(f)) assertEquals((short) b, Conversions.floatToF16(f));
        }
        assertEquals(Float.POSITIVE_INFINITY, Conversions.f16ToFloat(Conversions.floatToF16(70000f)));
        assertEquals((short) 0x7E00, Conversions.floatToF16(Float.NaN));
    }

    @Test
    void floatToIntegerFollowsX86() {
        assertEquals(Long.MIN_VALUE, Conversions.doubleToInt64(Double.NaN));
        assertEquals(Long.MIN_VALUE, Conversions.doubleToInt64(1e30));
        assertEquals(-2, Conversions.doubleToInt64(-2.9));
        assertEquals(Integer.MIN_VALUE, Conversions.doubleToInt32(3e9));
        assertEquals(7, Conversions.doubleToInt32(7.99));
    }
}
