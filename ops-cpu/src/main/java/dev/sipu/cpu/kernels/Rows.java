package dev.sipu.cpu.kernels;

import dev.sipu.cpu.iter.Parallel;
import dev.sipu.cpu.simd.Vec;
import dev.sipu.dispatch.Call;

import java.util.function.Supplier;

/** How the row-wise LLM kernels split rows across threads, each task with scratch of its own. */
final class Rows {
    private Rows() {}

    interface Loop {
        void row(long r);
    }

    /** A row length that fits a Java array of whole vectors. */
    static int width(Call c, int arg, long n) {
        if (n > Integer.MAX_VALUE - Vec.LANES) throw c.error(arg, "rows of " + n + " elements are too long for the CPU kernels");
        return (int) n;
    }

    /** Runs rows [0, rows), split across threads by element count; each task gets its own scratch from {@code perTask}. */
    static void forEach(long rows, long rowElements, Supplier<Loop> perTask) {
        if (rows <= 0) return;
        int tasks = (int) Math.min(rows, Parallel.tasks(rows * Math.max(rowElements, 1)));
        long per = (rows + tasks - 1) / tasks;
        Parallel.forEach(tasks, task -> {
            Loop loop = perTask.get();
            for (long r = task * per, end = Math.min(rows, r + per); r < end; r++) loop.row(r);
        });
    }
}
