/* Machine-limit probes: per-ISA bodies (probe_avx2.c, probe_avx512.c) behind probe.c's dispatch. */
#ifndef SIPU_PROBE_H
#define SIPU_PROBE_H

#include <stdint.h>

/* One thread's share: returns the flops done, and leaves its sums in *sink so nothing is dead code. */
double sipu_probe_fma_avx2(int64_t iters, float *sink);
double sipu_probe_fma_avx512(int64_t iters, float *sink);
double sipu_probe_dot_bf16_avx512(int64_t iters, float *sink);
double sipu_probe_amx_bf16_tiles(int64_t iters, float *sink);
void sipu_probe_triad_avx2(float *a, const float *b, const float *c, int64_t n, float s);
void sipu_probe_triad_avx512(float *a, const float *b, const float *c, int64_t n, float s);

#endif
