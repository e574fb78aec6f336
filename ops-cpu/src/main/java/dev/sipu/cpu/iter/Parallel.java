package dev.sipu.cpu.iter;

import java.util.concurrent.ForkJoinPool;
import java.util.function.IntConsumer;
import java.util.stream.IntStream;

/**
 * How CPU kernels use threads: work above {@link #GRAIN} elements is split into at most one task
 * per common-pool worker plus the caller, on the common ForkJoinPool (no pool of our own to size or
 * shut down; nested calls just run inline on the worker that reaches them).
 */
public final class Parallel {
    private Parallel() {}

    /** Elements below which splitting costs more than it saves. */
    public static final long GRAIN = 1 << 16;

    /** Threads a kernel may use: the common pool's workers and the calling thread. */
    public static int threads() {
        return ForkJoinPool.getCommonPoolParallelism() + 1;
    }

    /** Number of tasks for {@code work} elements: 1 below the grain, at most {@link #threads()}. */
    public static int tasks(long work) {
        return (int) Math.max(1, Math.min(threads(), work / GRAIN));
    }

    /** Runs {@code body} for every task index in [0, tasks), in parallel when there is more than one. */
    public static void forEach(int tasks, IntConsumer body) {
        if (tasks <= 1) {
            for (int i = 0; i < tasks; i++) body.accept(i);
        } else {
            IntStream.range(0, tasks).parallel().forEach(body);
        }
    }
}
