/*
 * Throughput of the non-GEMM rows of issue 6 (not a test): attention prefill and paged decode,
 * softmax, casts, fused experts, at the JMH benchmark's shapes. Prints the best time of several runs.
 * Usage: ops_bench [seconds per case, default 0.5] [substring of the case names]
 */
#include "bench_timing.h"
#include "sipu_kernels.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static sipu_tensor desc(void *data, int32_t dtype, int ndim, const int64_t *sizes) {
    sipu_tensor t;
    memset(&t, 0, sizeof t);
    t.data = data;
    t.dtype = dtype;
    t.ndim = ndim;
    int64_t s = 1;
    for (int i = ndim - 1; i >= 0; i--) {
        t.sizes[i] = sizes[i];
        t.strides[i] = s;
        s *= sizes[i];
    }
    return t;
}

static void *filled(size_t n, int32_t dtype) {
    int item = dtype == SIPU_F32 ? 4 : 2;
    unsigned char *p = malloc(n * item);
    uint32_t s = 12345;
    for (size_t i = 0; i < n; i++) {
        s = s * 1664525u + 1013904223u;
        float v = ((s >> 8) & 0xFFFF) / 32768.0f - 1.0f;
        uint32_t u;
        memcpy(&u, &v, 4);
        if (dtype == SIPU_F32) memcpy(p + i * 4, &v, 4);
        else { uint16_t h = (uint16_t) (u >> 16); memcpy(p + i * 2, &h, 2); }
    }
    return p;
}

/* with OPS_CPU set, the best process CPU time per run is reported instead of wall time (1 thread: immune to preemption) */
static int use_cpu = -1;

static double budget = 0.5;
static const char *filter = "";

/* OPS_REPS=n: exactly n timed runs */
static double best_seconds(runner f, void *ctx) {
    if (use_cpu < 0) use_cpu = getenv("OPS_CPU") != NULL;
    const char *fixed = getenv("OPS_REPS");
    bench_best b = bench_time(f, ctx, budget, fixed ? atoi(fixed) : 0);
    return use_cpu ? b.cpu : b.wall;
}

static int want(const char *name) { return strstr(name, filter) != NULL; }

/* ---- attention ---- */

typedef struct { sipu_tensor out, lse, q, k, v, cq, ck, used, table; int paged; } attn;
static sipu_status run_attn(void *p) {
    attn *a = p;
    return sipu_attention(&a->out, a->paged ? NULL : &a->lse, &a->q, &a->k, &a->v, &a->cq, a->paged ? NULL : &a->ck,
                          a->paged ? &a->used : NULL, a->paged ? &a->table : NULL, 0.088, -1, a->paged ? -1 : 0, 0.0);
}

static void bench_prefill(int64_t T, int64_t H, int64_t D) {
    if (!want("attention prefill")) return;
    attn a;
    memset(&a, 0, sizeof a);
    int64_t s3[] = {T, H, D}, s2[] = {H, T}, sc[] = {2};
    a.q = desc(filled(T * H * D, SIPU_BF16), SIPU_BF16, 3, s3);
    a.k = desc(filled(T * H * D, SIPU_BF16), SIPU_BF16, 3, s3);
    a.v = desc(filled(T * H * D, SIPU_BF16), SIPU_BF16, 3, s3);
    a.out = desc(malloc(T * H * D * 2), SIPU_BF16, 3, s3);
    a.lse = desc(malloc(H * T * 4), SIPU_F32, 2, s2);
    int32_t *cu = malloc(8);
    cu[0] = 0, cu[1] = (int32_t) T;
    a.cq = desc(cu, SIPU_I32, 1, sc);
    a.ck = a.cq;
    double t = best_seconds(run_attn, &a), flops = 2.0 * 2 * H * D * T * T / 2;
    printf("attention prefill bf16 %lld tok, %lld heads, d %lld, causal: %9.3f ms %7.1f GFLOP/s\n", (long long) T, (long long) H,
           (long long) D, t * 1e3, flops / t * 1e-9);
}

static void bench_decode(int64_t B, int64_t ctx, int64_t H, int64_t D) {
    if (!want("attention decode")) return;
    attn a;
    memset(&a, 0, sizeof a);
    a.paged = 1;
    int64_t page = 16, blocks = B * ctx / page;
    int64_t sq[] = {B, H, D}, skv[] = {blocks, page, H, D}, sc[] = {B + 1}, su[] = {B}, st[] = {B, ctx / page};
    a.q = desc(filled(B * H * D, SIPU_BF16), SIPU_BF16, 3, sq);
    a.k = desc(filled(blocks * page * H * D, SIPU_BF16), SIPU_BF16, 4, skv);
    a.v = desc(filled(blocks * page * H * D, SIPU_BF16), SIPU_BF16, 4, skv);
    a.out = desc(malloc(B * H * D * 2), SIPU_BF16, 3, sq);
    int32_t *cu = malloc((B + 1) * 4), *used = malloc(B * 4), *table = malloc(blocks * 4);
    for (int64_t b = 0; b <= B; b++) cu[b] = (int32_t) b;
    for (int64_t b = 0; b < B; b++) used[b] = (int32_t) ctx;
    for (int64_t j = 0; j < blocks; j++) table[j] = (int32_t) j;
    a.cq = desc(cu, SIPU_I32, 1, sc);
    a.used = desc(used, SIPU_I32, 1, su);
    a.table = desc(table, SIPU_I32, 2, st);
    double t = best_seconds(run_attn, &a), flops = 2.0 * 2 * B * H * D * ctx;
    printf("attention decode bf16 batch %lld, ctx %lld, %lld heads, d %lld: %9.3f ms %7.1f GFLOP/s %6.1f GB/s (K+V)\n", (long long) B,
           (long long) ctx, (long long) H, (long long) D, t * 1e3, flops / t * 1e-9, 2.0 * B * ctx * H * D * 2 / t * 1e-9);
}

/* ---- softmax, casts ---- */

typedef struct { sipu_tensor out, in; int log; } unop;
static sipu_status run_softmax(void *p) { unop *u = p; return sipu_softmax_rows(&u->out, &u->in, u->log); }
static sipu_status run_copy(void *p) { unop *u = p; return sipu_copy(&u->out, &u->in); }

static void bench_softmax(int64_t R, int64_t N, int log) {
    if (!want(log ? "log_softmax" : "softmax")) return;
    int64_t s[] = {R, N};
    unop u = {desc(malloc(R * N * 4), SIPU_F32, 2, s), desc(filled(R * N, SIPU_F32), SIPU_F32, 2, s), log};
    double t = best_seconds(run_softmax, &u);
    printf("%-11s f32 [%lld, %lld]: %9.3f us %6.1f GB/s\n", log ? "log_softmax" : "softmax", (long long) R, (long long) N, t * 1e6,
           2.0 * R * N * 4 / t * 1e-9);
}

static const char *dname(int32_t d) { return d == SIPU_F32 ? "f32" : d == SIPU_F16 ? "f16" : "bf16"; }

static void bench_cast(int32_t from, int32_t to, int64_t n) {
    char name[64];
    snprintf(name, sizeof name, "cast %s->%s", dname(from), dname(to));
    if (!want(name)) return;
    int64_t s[] = {n, n};
    int fi = from == SIPU_F32 ? 4 : 2, ti = to == SIPU_F32 ? 4 : 2;
    unop u = {desc(malloc(n * n * ti), to, 2, s), desc(filled(n * n, from == SIPU_F32 ? SIPU_F32 : SIPU_BF16), from, 2, s), 0};
    memset(u.out.data, 0, n * n * ti); /* touch the pages outside the timing */
    double t = best_seconds(run_copy, &u);
    printf("%-15s [%lld, %lld]: %9.3f ms %6.1f GB/s\n", name, (long long) n, (long long) n, t * 1e3, (double) n * n * (fi + ti) / t * 1e-9);
}

/* ---- fused experts ---- */

typedef struct { sipu_tensor x, w1, w2, tw, ids; void *x0; size_t bytes; } experts;
static sipu_status run_experts(void *p) {
    experts *e = p;
    memcpy(e->x.data, e->x0, e->bytes);
    return sipu_fused_experts(&e->x, &e->w1, &e->w2, &e->tw, &e->ids, NULL, NULL, NULL, 0);
}

static void bench_experts(int64_t T, int64_t K, int64_t E, int64_t H, int64_t I) {
    if (!want("fused_experts")) return;
    experts e;
    int64_t sx[] = {T, H}, s1[] = {E, 2 * I, H}, s2[] = {E, H, I}, st[] = {T, K};
    e.bytes = T * H * 2;
    e.x0 = filled(T * H, SIPU_BF16);
    e.x = desc(malloc(e.bytes), SIPU_BF16, 2, sx);
    e.w1 = desc(filled(E * 2 * I * H, SIPU_BF16), SIPU_BF16, 3, s1);
    e.w2 = desc(filled(E * H * I, SIPU_BF16), SIPU_BF16, 3, s2);
    float *tw = malloc(T * K * 4);
    int32_t *ids = malloc(T * K * 4);
    for (int64_t j = 0; j < T * K; j++) tw[j] = 1.0f / (float) K, ids[j] = (int32_t) ((j * 5 + j / K) % E);
    e.tw = desc(tw, SIPU_F32, 2, st);
    e.ids = desc(ids, SIPU_I32, 2, st);
    double t = best_seconds(run_experts, &e), flops = 2.0 * T * K * 3 * H * I;
    printf("fused_experts bf16 %lld tok, top-%lld of %lld, H %lld, I %lld: %9.3f ms %7.1f GFLOP/s\n", (long long) T, (long long) K,
           (long long) E, (long long) H, (long long) I, t * 1e3, flops / t * 1e-9);
}

/* block-FP8 weights (DeepSeek's 128 x 128 scales): e4m3 codes without NaN, multipliers near 1 / (64 sqrt(cols)) */
typedef struct { experts e; sipu_tensor s1, s2; } experts_fp8;
static sipu_status run_experts_fp8(void *p) {
    experts_fp8 *f = p;
    memcpy(f->e.x.data, f->e.x0, f->e.bytes);
    return sipu_fused_experts(&f->e.x, &f->e.w1, &f->e.w2, &f->e.tw, &f->e.ids, NULL, &f->s1, &f->s2, 0);
}

static void *codes_e4m3(size_t n) {
    uint8_t *p = malloc(n);
    uint32_t s = 777;
    for (size_t i = 0; i < n; i++) {
        s = s * 1664525u + 1013904223u;
        p[i] = (uint8_t) ((s >> 16) & 0xF7); /* |code| <= 0x77: no NaN */
    }
    return p;
}

static float *scales(size_t n, int64_t cols) {
    float *p = malloc(n * 4);
    for (size_t i = 0; i < n; i++) p[i] = (float) (1.0 / (64.0 * sqrt((double) cols))) * (0.5f + (float) (i % 7) / 7.0f);
    return p;
}

static void bench_experts_fp8(int64_t T, int64_t K, int64_t E, int64_t H, int64_t I) {
    if (!want("fused_experts fp8")) return;
    experts_fp8 f;
    int64_t sx[] = {T, H}, s1[] = {E, 2 * I, H}, s2[] = {E, H, I}, st[] = {T, K}, c1[] = {E, 2 * I / 128, H / 128}, c2[] = {E, H / 128, I / 128};
    f.e.bytes = T * H * 2;
    f.e.x0 = filled(T * H, SIPU_BF16);
    f.e.x = desc(malloc(f.e.bytes), SIPU_BF16, 2, sx);
    f.e.w1 = desc(codes_e4m3(E * 2 * I * H), SIPU_F8E4M3FN, 3, s1);
    f.e.w2 = desc(codes_e4m3(E * H * I), SIPU_F8E4M3FN, 3, s2);
    f.s1 = desc(scales(E * (2 * I / 128) * (H / 128), H), SIPU_F32, 3, c1);
    f.s2 = desc(scales(E * (H / 128) * (I / 128), I), SIPU_F32, 3, c2);
    float *tw = malloc(T * K * 4);
    int32_t *ids = malloc(T * K * 4);
    for (int64_t j = 0; j < T * K; j++) tw[j] = 1.0f / (float) K, ids[j] = (int32_t) ((j * 5 + j / K) % E);
    f.e.tw = desc(tw, SIPU_F32, 2, st);
    f.e.ids = desc(ids, SIPU_I32, 2, st);
    double t = best_seconds(run_experts_fp8, &f), flops = 2.0 * T * K * 3 * H * I;
    printf("fused_experts fp8 %lld tok, top-%lld of %lld, H %lld, I %lld, blocks 128: %9.3f ms %7.1f GFLOP/s\n", (long long) T, (long long) K,
           (long long) E, (long long) H, (long long) I, t * 1e3, flops / t * 1e-9);
}

/* ---- embedding (index_gather of whole rows) ---- */

typedef struct { sipu_tensor out, src, idx; int64_t size, stride; } gather;
static sipu_status run_gather(void *p) {
    gather *g = p;
    const sipu_tensor *ix[] = {&g->idx};
    return sipu_index_gather(&g->out, &g->src, 1, ix, &g->size, &g->stride, 0);
}

static void bench_embedding(int64_t V, int64_t H, int64_t T) {
    if (!want("embedding")) return;
    gather g;
    int64_t so[] = {T, H};
    g.out = desc(malloc(T * H * 4), SIPU_F32, 2, so);
    memset(g.out.data, 0, T * H * 4);
    g.src = desc(filled(V * H, SIPU_F32), SIPU_F32, 2, so);
    g.src.strides[0] = 0, g.src.strides[1] = 1; /* the table restrided to out's shape */
    int64_t *idx = malloc(T * 8);
    for (int64_t t = 0; t < T; t++) idx[t] = (t * 7919) % V;
    g.idx = desc(idx, SIPU_I64, 2, so);
    g.idx.strides[0] = 1, g.idx.strides[1] = 0;
    g.size = V, g.stride = H;
    double t = best_seconds(run_gather, &g);
    printf("embedding f32 [%lld, %lld] rows of a [%lld, %lld] table: %9.3f us %6.1f GB/s\n", (long long) T, (long long) H, (long long) V,
           (long long) H, t * 1e6, 2.0 * T * H * 4 / t * 1e-9);
}

/* ---- fused row ops, routing, row reductions (the JMH rows of the same names) ---- */

typedef struct { sipu_tensor out, x, w, y; } rowop;
static sipu_status run_rms_norm(void *p) { rowop *r = p; return sipu_rms_norm(&r->out, &r->x, &r->w, 1e-6); }
static sipu_status run_silu(void *p) { rowop *r = p; return sipu_silu_and_mul(&r->out, &r->x); }

static void bench_rms_norm(int32_t t, int64_t R, int64_t H) {
    char name[64];
    snprintf(name, sizeof name, "rms_norm %s", dname(t));
    if (!want(name)) return;
    int64_t s[] = {R, H}, sw[] = {H};
    int item = t == SIPU_F32 ? 4 : 2;
    rowop r = {.out = desc(malloc(R * H * item), t, 2, s), .x = desc(filled(R * H, t), t, 2, s), .w = desc(filled(H, t), t, 1, sw)};
    double sec = best_seconds(run_rms_norm, &r);
    printf("%-17s [%lld, %lld]: %9.3f us %6.1f GB/s\n", name, (long long) R, (long long) H, sec * 1e6, 2.0 * R * H * item / sec * 1e-9);
}

static void bench_silu(int32_t t, int64_t R, int64_t D) {
    char name[64];
    snprintf(name, sizeof name, "silu_and_mul %s", dname(t));
    if (!want(name)) return;
    int64_t so[] = {R, D}, sx[] = {R, 2 * D};
    int item = t == SIPU_F32 ? 4 : 2;
    rowop r = {.out = desc(malloc(R * D * item), t, 2, so), .x = desc(filled(R * 2 * D, t), t, 2, sx)};
    double sec = best_seconds(run_silu, &r);
    printf("%-17s [%lld, 2x%lld]: %9.3f us %6.1f GB/s\n", name, (long long) R, (long long) D, sec * 1e6, 3.0 * R * D * item / sec * 1e-9);
}

static sipu_status run_grouped_topk(void *p) { rowop *r = p; return sipu_grouped_topk(&r->out, &r->y, &r->x, &r->w, 8, 4, 1, 2.5, 1); }

static void bench_grouped_topk(int64_t T, int64_t E) {
    if (!want("grouped_topk")) return;
    int64_t ss[] = {T, E}, sb[] = {E}, sk[] = {T, 8};
    rowop r = {desc(malloc(T * 8 * 4), SIPU_F32, 2, sk), desc(filled(T * E, SIPU_F32), SIPU_F32, 2, ss), desc(filled(E, SIPU_F32), SIPU_F32, 1, sb),
               desc(malloc(T * 8 * 8), SIPU_I64, 2, sk)};
    printf("grouped_topk T=%lld [%lld, %lld], 8 groups, top-8: %9.3f us\n", (long long) T, (long long) T, (long long) E,
           best_seconds(run_grouped_topk, &r) * 1e6);
}

static sipu_status run_argmax(void *p) { rowop *r = p; return sipu_reduce_rows(SIPU_REDUCE_ARGMAX, &r->y, NULL, &r->x); }
static sipu_status run_topk(void *p) { rowop *r = p; return sipu_topk_rows(&r->out, &r->y, &r->x, 8, 1); }

static void bench_vocab_rows(const char *name, runner f, int64_t R, int64_t N, int64_t k) {
    if (!want(name)) return;
    int64_t sx[] = {R, N}, sk[] = {R, k}, s1[] = {R};
    rowop r = {.out = desc(malloc(R * k * 4), SIPU_F32, 2, sk), .x = desc(filled(R * N, SIPU_F32), SIPU_F32, 2, sx),
               .y = desc(malloc(R * (k ? k : 1) * 8), SIPU_I64, k ? 2 : 1, k ? sk : s1)};
    double sec = best_seconds(f, &r);
    printf("%-8s f32 [%lld, %lld]: %9.3f us %6.1f GB/s\n", name, (long long) R, (long long) N, sec * 1e6, 4.0 * R * N / sec * 1e-9);
}

/* cat on the last dim as the Java side runs it: one sipu_copy per input into its slice of out */
typedef struct { sipu_tensor a, b, oa, ob; } cat2;
static sipu_status run_cat(void *p) {
    cat2 *c = p;
    sipu_status st = sipu_copy(&c->oa, &c->a);
    return st ? st : sipu_copy(&c->ob, &c->b);
}

static void bench_cat(int64_t B, int64_t R, int64_t na, int64_t nb) {
    if (!want("cat")) return;
    int64_t sa[] = {B, R, na}, sb[] = {B, R, nb}, so[] = {B, R, na + nb};
    float *out = malloc(B * R * (na + nb) * 4);
    memset(out, 0, B * R * (na + nb) * 4);
    cat2 c = {desc(filled(B * R * na, SIPU_F32), SIPU_F32, 3, sa), desc(filled(B * R * nb, SIPU_F32), SIPU_F32, 3, sb),
              desc(out, SIPU_F32, 3, so), desc(out + na, SIPU_F32, 3, so)};
    c.oa.sizes[2] = na, c.ob.sizes[2] = nb;
    double sec = best_seconds(run_cat, &c);
    printf("cat f32 [%lld, %lld, %lld] ++ [.., %lld] dim -1: %9.3f us %6.1f GB/s\n", (long long) B, (long long) R, (long long) na,
           (long long) nb, sec * 1e6, 2.0 * B * R * (na + nb) * 4 / sec * 1e-9);
}

int main(int argc, char **argv) {
    if (argc > 1) budget = atof(argv[1]);
    if (argc > 2) filter = argv[2];
    printf("%s, SIMD %s, %d threads\n", sipu_version(), sipu_simd_name(), sipu_get_num_threads());
    bench_prefill(512, 16, 128);
    bench_decode(8, 1024, 16, 128);
    bench_softmax(32, 4096, 0);
    bench_softmax(32, 4096, 1);
    bench_cast(SIPU_F32, SIPU_F16, 4096);
    bench_cast(SIPU_F32, SIPU_BF16, 4096);
    bench_cast(SIPU_F16, SIPU_F32, 4096);
    bench_cast(SIPU_BF16, SIPU_F32, 4096);
    bench_cast(SIPU_BF16, SIPU_F16, 4096);
    bench_experts(64, 8, 32, 2048, 512);
    bench_experts_fp8(64, 8, 32, 2048, 512);
    bench_embedding(32000, 2048, 4096);
    bench_embedding(4096, 7168, 256);
    bench_rms_norm(SIPU_F32, 256, 7168);
    bench_rms_norm(SIPU_BF16, 256, 7168);
    bench_silu(SIPU_F32, 256, 2048);
    bench_silu(SIPU_BF16, 256, 2048);
    bench_grouped_topk(64, 256);
    bench_grouped_topk(512, 256);
    bench_vocab_rows("argmax", run_argmax, 8, 129280, 0);
    bench_vocab_rows("topk k=8", run_topk, 8, 129280, 8);
    bench_cat(512, 128, 128, 64);
    return 0;
}
