package dev.sipu.api;

import java.util.concurrent.atomic.AtomicLong;

/**
 * A seedable, counter-based source of randomness for sampling ops ({@code exponential_}).
 *
 * <p>Draw {@code c} (counting from 0) of a generator with seed {@code s} is
 * {@code new java.util.SplittableRandom(s)}'s {@code c}-th {@code nextDouble()}, computed directly from
 * {@code (s, c)} by {@link #uniform}. An op that needs {@code n} draws {@linkplain #reserve reserves}
 * the next {@code n} counters and gives element {@code i} (row-major) draw {@code start + i}, so the
 * same seed yields the same values on every device and thread count, and two calls never share
 * draws. Thread-safe: concurrent calls get disjoint counter ranges (in the order they reserve).
 */
public final class Generator {
    /** SplittableRandom's golden gamma. */
    private static final long GAMMA = 0x9e3779b97f4a7c15L;

    private final long seed;
    private final AtomicLong offset = new AtomicLong();

    public Generator(long seed) {
        this.seed = seed;
    }

    public long seed() { return seed; }

    /** The next counter not yet drawn. */
    public long offset() { return offset.get(); }

    /** Reserves {@code n} draws and returns the first counter of the range. */
    public long reserve(long n) {
        if (n < 0) throw new IllegalArgumentException("cannot reserve " + n + " draws");
        return offset.getAndAdd(n);
    }

    /** Draw {@code counter} of seed {@code seed}: a double uniformly distributed in [0, 1). */
    public static double uniform(long seed, long counter) {
        return (mix64(seed + (counter + 1) * GAMMA) >>> 11) * 0x1.0p-53;
    }

    private static long mix64(long z) {
        z = (z ^ (z >>> 30)) * 0xbf58476d1ce4e5b9L;
        z = (z ^ (z >>> 27)) * 0x94d049bb133111ebL;
        return z ^ (z >>> 31);
    }
}
