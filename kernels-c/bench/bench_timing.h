/* Timing shared by the bench programs (gemm_bench, ops_bench): best wall and process CPU time per run. */
#ifndef SIPU_BENCH_TIMING_H
#define SIPU_BENCH_TIMING_H

#include "sipu_kernels.h"

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

typedef sipu_status (*runner)(void *ctx);

/* seconds per run: the best wall time and the best process CPU time (all threads' sum) */
typedef struct { double wall, cpu; } bench_best;

static double clock_seconds(clockid_t id) {
    struct timespec ts;
    clock_gettime(id, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static double now(void) { return clock_seconds(CLOCK_MONOTONIC); }

/*
 * One checked call (an error ends the program), then at least 3 runs for `budget` seconds (at most
 * 1000), or exactly `reps` runs when reps > 0 (cycle counts under perf stat on a shared machine).
 */
static bench_best bench_time(runner f, void *ctx, double budget, int reps) {
    if (f(ctx) != SIPU_OK) {
        fprintf(stderr, "error: %s\n", sipu_last_error());
        exit(1);
    }
    bench_best b = {1e30, 1e30};
    const double start = now();
    for (int r = 0; reps > 0 ? r < reps : (r < 3 || now() - start < budget) && r < 1000; r++) {
        double t0 = now(), u0 = clock_seconds(CLOCK_PROCESS_CPUTIME_ID);
        f(ctx);
        double t = now() - t0, u = clock_seconds(CLOCK_PROCESS_CPUTIME_ID) - u0;
        if (t < b.wall) b.wall = t;
        if (u < b.cpu) b.cpu = u;
    }
    return b;
}

#endif
