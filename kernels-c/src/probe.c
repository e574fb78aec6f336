/*
 * Machine limits for the benchmark table: fp32 FMA and bf16 dot throughput and triad bandwidth,
 * each on the library's thread count with the path the kernels themselves use (sipu_simd()). They do
 * a fixed amount of work and return how much, so the caller's timer (JMH) is the only clock.
 */
#include "internal.h"
#include "probe.h"

#ifdef _OPENMP
#include <omp.h>
#endif

/* Baseline x86-64 has no FMA: mul + add on eight chains (the compiler may pack them into SSE). */
static double fma_scalar(int64_t iters, float *sink) {
    float acc[8];
    for (int j = 0; j < 8; j++) acc[j] = (float) j;
    for (int64_t i = 0; i < iters; i++)
        for (int j = 0; j < 8; j++) acc[j] = acc[j] * 0.999999f + 1e-6f;
    for (int j = 0; j < 8; j++) *sink += acc[j];
    return 2.0 * 8 * (double) iters;
}

static double fma_one(int64_t iters, float *sink) {
    switch (sipu_simd()) {
    case SIPU_SIMD_AVX512_BF16:
    case SIPU_SIMD_AVX512: return sipu_probe_fma_avx512(iters, sink);
    case SIPU_SIMD_AVX2: return sipu_probe_fma_avx2(iters, sink);
    default: return fma_scalar(iters, sink);
    }
}

static volatile float probe_sink;

/* Every thread runs the whole count: the rate is per machine at this thread count. */
static double run_threads(int64_t iters, int bf16) {
    double flops = 0;
    float sink = 0;
    if (iters <= 0) return 0;
    #pragma omp parallel num_threads(sipu_threads()) reduction(+ : flops, sink)
    {
        float s = 0;
        /* Without vdpbf16ps the kernels widen bf16 to fp32 exactly and use fp32 FMA, so that is the limit. */
        flops += bf16 && sipu_simd() == SIPU_SIMD_AVX512_BF16 ? sipu_probe_dot_bf16_avx512(iters, &s) : fma_one(iters, &s);
        sink += s;
    }
    probe_sink = sink;
    return flops;
}

SIPU_API double sipu_probe_fma_f32(int64_t iters) { return run_threads(iters, 0); }

SIPU_API double sipu_probe_amx_bf16(int64_t iters) {
    if (iters <= 0 || !sipu_amx_available()) return 0;
    double flops = 0;
    float sink = 0;
    #pragma omp parallel num_threads(sipu_threads()) reduction(+ : flops, sink)
    {
        float s = 0;
        flops += sipu_probe_amx_bf16_tiles(iters, &s);
        sink += s;
    }
    probe_sink = sink;
    return flops;
}

SIPU_API double sipu_probe_dot_bf16(int64_t iters) { return run_threads(iters, 1); }

/* reps passes in one parallel region, each thread over its own chunk: the limit is the bandwidth at this
   working set, not the cost of waking the team (which a single pass over a cache-sized set would measure). */
SIPU_API double sipu_probe_triad(float *a, const float *b, const float *c, int64_t n, float scalar, int64_t reps) {
    if (n <= 0 || reps <= 0 || !a || !b || !c) return 0;
    int level = sipu_simd();
    /* contiguous static chunks, as the kernels split their rows */
    #pragma omp parallel num_threads(sipu_threads())
    {
        int t = 1, id = 0;
#ifdef _OPENMP
        t = omp_get_num_threads();
        id = omp_get_thread_num();
#endif
        int64_t lo = n * id / t, hi = n * (id + 1) / t;
        for (int64_t r = 0; r < reps; r++) {
            if (level >= SIPU_SIMD_AVX512) sipu_probe_triad_avx512(a + lo, b + lo, c + lo, hi - lo, scalar);
            else if (level == SIPU_SIMD_AVX2) sipu_probe_triad_avx2(a + lo, b + lo, c + lo, hi - lo, scalar);
            else
                for (int64_t i = lo; i < hi; i++) a[i] = b[i] + scalar * c[i];
        }
    }
    return 12.0 * (double) n * (double) reps;
}
