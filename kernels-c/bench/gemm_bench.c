/*
 * GEMM throughput of libsipu_kernels (not a test): sipu_matmul f32/bf16 at 1024^3 and at linear-layer
 * shapes (a [M, 7168] times a [2048, 7168] weight, transposed view), sipu_fp8_gemm at the same
 * shapes. Prints the best GFLOP/s of several runs and, for the weight shapes, the weight bytes/s.
 * The machine may be shared: besides the best wall time, each case prints the GFLOP/s of its best
 * run in process CPU time divided by the team size ("cpu"), which leaves out time other processes
 * held the cores (OpenMP threads spin while they wait, so it is not flattered by idle threads).
 * Usage: gemm_bench [seconds per case, default 0.5] [cases, e.g. "f32:16,bf16:1024,fp8:*" (M; 1024 = 1024^3)]
 */
#include "bench_timing.h"
#include "sipu_kernels.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static sipu_tensor desc2(void *data, int32_t dtype, int64_t s0, int64_t s1, int64_t st0, int64_t st1) {
    sipu_tensor t;
    memset(&t, 0, sizeof t);
    t.data = data;
    t.dtype = dtype;
    t.ndim = 2;
    t.sizes[0] = s0;
    t.sizes[1] = s1;
    t.strides[0] = st0;
    t.strides[1] = st1;
    return t;
}

static void *filled(size_t n, int item, int32_t dtype) {
    unsigned char *p = malloc(n * item);
    uint32_t s = 12345;
    for (size_t i = 0; i < n; i++) {
        s = s * 1664525u + 1013904223u;
        float v = ((s >> 8) & 0xFFFF) / 65536.0f - 0.5f;
        if (dtype == SIPU_F32) memcpy(p + i * 4, &v, 4);
        else if (dtype == SIPU_BF16) { uint32_t u; memcpy(&u, &v, 4); uint16_t h = (uint16_t) (u >> 16); memcpy(p + i * 2, &h, 2); }
        else p[i] = (unsigned char) ((s >> 16) & 0x77); /* e4m3 without NaN */
    }
    return p;
}

static double budget = 0.5;
static const char *only;

static int want(const char *kind, int64_t m) {
    if (!only) return 1;
    char a[32], b[32];
    snprintf(a, sizeof a, "%s:%lld", kind, (long long) m);
    snprintf(b, sizeof b, "%s:*", kind);
    for (const char *p = only; *p;) {
        const char *e = strchr(p, ',');
        size_t n = e ? (size_t) (e - p) : strlen(p);
        if ((strlen(a) == n && !strncmp(p, a, n)) || (strlen(b) == n && !strncmp(p, b, n))) return 1;
        p += n + (e != NULL);
    }
    return 0;
}
static double best_cpu; /* of the last best_seconds: best process CPU seconds per run / threads */

static double best_seconds(runner f, void *ctx) {
    bench_best b = bench_time(f, ctx, budget, 0);
    best_cpu = b.cpu / sipu_get_num_threads();
    return b.wall;
}

typedef struct { sipu_tensor o, a, b, as, bs; } args;
static sipu_status run_mm(void *p) { args *x = p; return sipu_matmul(&x->o, &x->a, &x->b, NULL); }
static sipu_status run_fp8(void *p) { args *x = p; return sipu_fp8_gemm(&x->o, &x->a, &x->as, &x->b, &x->bs); }

static void bench_mm(int32_t dt, int64_t M, int64_t K, int64_t N, int weight_layout) {
    if (!want(dt == SIPU_F32 ? "f32" : "bf16", M)) return;
    int item = dt == SIPU_F32 ? 4 : 2;
    void *a = filled(M * K, item, dt), *b = filled(K * N, item, dt), *o = malloc(M * N * item);
    args x;
    x.a = desc2(a, dt, M, K, K, 1);
    /* weight layout: b = W^T for W [N, K] row-major (linear); else b [K, N] row-major */
    x.b = weight_layout ? desc2(b, dt, K, N, 1, K) : desc2(b, dt, K, N, N, 1);
    x.o = desc2(o, dt, M, N, N, 1);
    double t = best_seconds(run_mm, &x);
    printf("matmul %-4s M=%-5lld K=%-5lld N=%-5lld %s %8.1f GFLOP/s %7.1f GB/s weights %9.3f ms | cpu %8.1f GFLOP/s %7.1f GB/s\n",
           dt == SIPU_F32 ? "f32" : "bf16", (long long) M, (long long) K, (long long) N, weight_layout ? "a@W^T" : "a@b  ",
           2.0 * M * N * K / t * 1e-9, (double) K * N * item / t * 1e-9, t * 1e3, 2.0 * M * N * K / best_cpu * 1e-9,
           (double) K * N * item / best_cpu * 1e-9);
    free(a); free(b); free(o);
}

static void bench_fp8(int64_t M, int64_t K, int64_t N) {
    if (!want("fp8", M)) return;
    int64_t KB = (K + 127) / 128, NB = (N + 127) / 128;
    void *a = filled(M * K, 1, SIPU_F8E4M3FN), *b = filled(K * N, 1, SIPU_F8E4M3FN), *o = malloc(M * N * 2);
    float *as = malloc(M * KB * 4), *bs = malloc(NB * KB * 4);
    for (int64_t i = 0; i < M * KB; i++) as[i] = 0.01f;
    for (int64_t i = 0; i < NB * KB; i++) bs[i] = 0.02f;
    args x;
    x.a = desc2(a, SIPU_F8E4M3FN, M, K, K, 1);
    x.b = desc2(b, SIPU_F8E4M3FN, N, K, K, 1);
    x.as = desc2(as, SIPU_F32, M, KB, KB, 1);
    x.bs = desc2(bs, SIPU_F32, NB, KB, KB, 1);
    x.o = desc2(o, SIPU_BF16, M, N, N, 1);
    double t = best_seconds(run_fp8, &x);
    printf("fp8_gemm      M=%-5lld K=%-5lld N=%-5lld       %8.1f GFLOP/s %7.1f GB/s weights %9.3f ms | cpu %8.1f GFLOP/s %7.1f GB/s\n",
           (long long) M, (long long) K, (long long) N, 2.0 * M * N * K / t * 1e-9, (double) K * N / t * 1e-9, t * 1e3,
           2.0 * M * N * K / best_cpu * 1e-9, (double) K * N / best_cpu * 1e-9);
    free(a); free(b); free(o); free(as); free(bs);
}

int main(int argc, char **argv) {
    if (argc > 1) budget = atof(argv[1]);
    only = argc > 2 ? argv[2] : NULL;
    printf("%s, SIMD %s, %d threads\n", sipu_version(), sipu_simd_name(), sipu_get_num_threads());
    bench_mm(SIPU_F32, 1024, 1024, 1024, 0);
    bench_mm(SIPU_BF16, 1024, 1024, 1024, 0);
    static const int64_t ms[] = {1, 4, 16, 128, 512};
    for (int i = 0; i < 5; i++) bench_mm(SIPU_F32, ms[i], 7168, 2048, 1);
    for (int i = 0; i < 5; i++) bench_mm(SIPU_BF16, ms[i], 7168, 2048, 1);
    for (int i = 0; i < 5; i++) bench_fp8(ms[i], 7168, 2048);
    return 0;
}
