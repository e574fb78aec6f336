package dev.sipu.api;

import java.util.SplittableRandom;

/**
 * A seedable source of randomness for sampling ops ({@code exponential_}). Draws come from
 * {@link SplittableRandom} in element order, so a seed gives the same values on every device.
 * Not thread-safe: give each thread its own generator.
 */
public final class Generator {
    private final SplittableRandom random;
    private final long seed;

    public Generator(long seed) {
        this.seed = seed;
        this.random = new SplittableRandom(seed);
    }

    public long seed() { return seed; }

    /** A double uniformly distributed in [0, 1). */
    public double nextDouble() { return random.nextDouble(); }

    public long nextLong() { return random.nextLong(); }
}
