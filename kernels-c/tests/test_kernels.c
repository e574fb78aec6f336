/*
 * Kernel tests against plain references: conversions bit-exact on every code, the ops on contiguous,
 * strided, broadcast (stride 0), 0-dim and empty tensors and on sizes that cross vector widths and
 * thread chunks. CTest runs this once per SIMD level (SIPU_SIMD).
 */
#include "convert.h"
#include "sipu_kernels.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int failures;
#define CHECK(cond, ...) do { if (!(cond)) { failures++; fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__); \
    fprintf(stderr, __VA_ARGS__); fputc('\n', stderr); } } while (0)

static sipu_tensor desc(void *data, int32_t dtype, int ndim, const int64_t *sizes, const int64_t *strides) {
    sipu_tensor t;
    memset(&t, 0, sizeof t);
    t.data = data;
    t.dtype = dtype;
    t.ndim = ndim;
    for (int i = 0; i < ndim; i++) {
        t.sizes[i] = sizes[i];
        t.strides[i] = strides[i];
    }
    return t;
}

static void test_conversions(void) {
    for (int b = 0; b < 65536; b++) {
        float f = bf16_to_f32((uint16_t) b);
        if (!isnan(f)) CHECK(f32_to_bf16(f) == b, "bf16 0x%04x", b);
        float h = f16_to_f32((uint16_t) b);
        if (!isnan(h)) CHECK(f32_to_f16(h) == b, "f16 0x%04x", b);
    }
    for (int b = 0; b < 256; b++) {
        float f = e4m3_to_f32((uint8_t) b);
        if (!isnan(f)) CHECK(f32_to_e4m3(f) == b, "e4m3 0x%02x", b);
        float g = e5m2_to_f32((uint8_t) b);
        if (!isnan(g)) CHECK(f32_to_e5m2(g) == b, "e5m2 0x%02x", b);
    }
    /* the fused round trip of the activation quantization: every 4099th float pattern and each step's midpoints */
    for (uint64_t u = 0; u <= 0xFFFFFFFFull; u += 4099) {
        float v = f32_from((uint32_t) u), a = e4m3_to_f32(f32_to_e4m3_sat(v)), r = e4m3_round_sat(v);
        if (!(isnan(a) && isnan(r))) CHECK(f32_bits(a) == f32_bits(r), "e4m3 round 0x%08x", (unsigned) u);
    }
    for (int b = 0; b < 127; b++) {
        float lo = e4m3_to_f32((uint8_t) b), hi = e4m3_to_f32((uint8_t) (b + 1)), mid = (lo + hi) / 2;
        const float probes[] = {mid, nextafterf(mid, 0.0f), nextafterf(mid, 1000.0f), -mid, -nextafterf(mid, 1000.0f)};
        for (int p = 0; p < 5; p++) {
            float a = e4m3_to_f32(f32_to_e4m3_sat(probes[p])), r = e4m3_round_sat(probes[p]);
            CHECK(f32_bits(a) == f32_bits(r), "e4m3 round %a", probes[p]);
        }
    }
    CHECK(e4m3_to_f32(f32_to_e4m3(464.0f)) == 448.0f, "464 -> 448");
    CHECK(isnan(e4m3_to_f32(f32_to_e4m3(470.0f))), "470 -> NaN");
    CHECK(isnan(e4m3_to_f32(f32_to_e4m3(INFINITY))), "inf -> NaN");
    CHECK(e4m3_to_f32(f32_to_e4m3(0x1p-10f)) == 0.0f, "2^-10 -> 0");
    CHECK(f32_to_bf16(1.0f + 0x1p-8f) == 0x3F80, "bf16 ties to even");
    CHECK(f64_to_i64(NAN) == INT64_MIN && f64_to_i32(3e9) == INT32_MIN, "x86 float->int");
}

static void test_binary_broadcast(void) {
    /* out[3, n] = a[3, n] + 2 * b[n] (broadcast over rows), f32, n crossing vector widths. */
    for (int n = 1; n <= 70; n += 13) {
        float *a = malloc(sizeof(float) * 3 * n), *b = malloc(sizeof(float) * n), *o = malloc(sizeof(float) * 3 * n);
        for (int i = 0; i < 3 * n; i++) a[i] = (float) i * 0.5f;
        for (int i = 0; i < n; i++) b[i] = (float) i - 3.0f;
        int64_t sz[] = {3, n}, st[] = {n, 1}, bst[] = {0, 1};
        sipu_tensor to = desc(o, SIPU_F32, 2, sz, st), ta = desc(a, SIPU_F32, 2, sz, st), tb = desc(b, SIPU_F32, 2, sz, bst);
        CHECK(sipu_binary(SIPU_BINARY_ADD, &to, &ta, &tb, 0, 2.0, SIPU_F32) == SIPU_OK, "%s", sipu_last_error());
        for (int i = 0; i < 3 * n; i++) CHECK(o[i] == a[i] + 2.0f * b[i % n], "add at %d", i);
        free(a); free(b); free(o);
    }
    /* Mixed dtypes: int64 a + bf16 b into f32, and a big strided case that crosses thread chunks. */
    int64_t n = 100000;
    int64_t *ai = malloc(sizeof(int64_t) * n);
    uint16_t *bb = malloc(sizeof(uint16_t) * n);
    float *o = malloc(sizeof(float) * n);
    for (int64_t i = 0; i < n; i++) { ai[i] = i; bb[i] = f32_to_bf16((float) (i % 7)); }
    int64_t sz[] = {n}, st[] = {1};
    sipu_tensor to = desc(o, SIPU_F32, 1, sz, st), ta = desc(ai, SIPU_I64, 1, sz, st), tb = desc(bb, SIPU_BF16, 1, sz, st);
    CHECK(sipu_binary(SIPU_BINARY_MUL, &to, &ta, &tb, 0, 1, SIPU_F32) == SIPU_OK, "%s", sipu_last_error());
    for (int64_t i = 0; i < n; i++) CHECK(o[i] == (float) i * (float) (i % 7), "mixed mul at %lld", (long long) i);
    free(ai); free(bb); free(o);
}

static void test_copy_fill_unary(void) {
    /* Transposed copy with a cast f32 -> bf16, then 0-dim and empty tensors. */
    float src[12];
    uint16_t dst[12];
    for (int i = 0; i < 12; i++) src[i] = (float) i + 0.25f;
    int64_t sz[] = {4, 3}, sst[] = {1, 4}, dst_st[] = {3, 1};
    sipu_tensor td = desc(dst, SIPU_BF16, 2, sz, dst_st), ts = desc(src, SIPU_F32, 2, sz, sst);
    CHECK(sipu_copy(&td, &ts) == SIPU_OK, "%s", sipu_last_error());
    for (int r = 0; r < 4; r++)
        for (int c = 0; c < 3; c++) CHECK(dst[r * 3 + c] == f32_to_bf16(src[c * 4 + r]), "copy %d,%d", r, c);
    double zero_dim = 0;
    sipu_tensor z = desc(&zero_dim, SIPU_F64, 0, NULL, NULL);
    CHECK(sipu_fill(&z, 2.5, 0) == SIPU_OK && zero_dim == 2.5, "0-dim fill");
    int64_t esz[] = {0, 5}, est[] = {5, 1};
    sipu_tensor e = desc(NULL, SIPU_F32, 2, esz, est);
    CHECK(sipu_fill(&e, 1, 1) == SIPU_OK, "empty fill");
    float x[40], y[40];
    for (int i = 0; i < 40; i++) x[i] = (float) (i - 20) / 4.0f;
    int64_t n[] = {40}, one[] = {1};
    sipu_tensor tx = desc(x, SIPU_F32, 1, n, one), ty = desc(y, SIPU_F32, 1, n, one);
    CHECK(sipu_unary(SIPU_UNARY_SILU, &ty, &tx) == SIPU_OK, "%s", sipu_last_error());
    for (int i = 0; i < 40; i++) {
        float want = x[i] / (1.0f + expf(-x[i]));
        CHECK(fabsf(y[i] - want) <= 4e-7f * fabsf(want) + 1e-7f, "silu %d: %g vs %g", i, y[i], want);
    }
}

static void test_matmul(void) {
    int M = 37, K = 45, N = 70;
    float *a = malloc(sizeof(float) * M * K), *b = malloc(sizeof(float) * K * N), *o = malloc(sizeof(float) * M * N);
    for (int i = 0; i < M * K; i++) a[i] = (float) ((i * 7) % 11) - 5.0f;
    for (int i = 0; i < K * N; i++) b[i] = (float) ((i * 3) % 13) - 6.0f;
    /* b given transposed: stored [N, K], viewed as [K, N] with strides [1, K]. */
    float *bt = malloc(sizeof(float) * K * N);
    for (int k = 0; k < K; k++)
        for (int j = 0; j < N; j++) bt[j * K + k] = b[k * N + j];
    int64_t as[] = {M, K}, ast[] = {K, 1}, bsz[] = {K, N}, bst[] = {1, K}, os[] = {M, N}, ost[] = {N, 1};
    sipu_tensor ta = desc(a, SIPU_F32, 2, as, ast), tb = desc(bt, SIPU_F32, 2, bsz, bst), to = desc(o, SIPU_F32, 2, os, ost);
    CHECK(sipu_matmul(&to, &ta, &tb, NULL) == SIPU_OK, "%s", sipu_last_error());
    for (int i = 0; i < M; i++)
        for (int j = 0; j < N; j++) {
            double s = 0;
            for (int k = 0; k < K; k++) s += (double) a[i * K + k] * b[k * N + j];
            CHECK(o[i * N + j] == (float) s, "mm %d,%d: %g vs %g", i, j, o[i * N + j], s);
        }
    int64_t bad[] = {K + 1, N};
    sipu_tensor tbad = desc(b, SIPU_F32, 2, bad, ost);
    CHECK(sipu_matmul(&to, &ta, &tbad, NULL) == SIPU_ERR_INVALID_ARGUMENT, "shape mismatch refused");
    CHECK(strstr(sipu_last_error(), "sipu_matmul") != NULL, "message names the function: %s", sipu_last_error());
    free(a); free(b); free(bt); free(o);
}

/* ---- GEMM paths against a plain triple loop (CTest runs this per SIMD level: plain C, avx2, avx512, bf16) ---- */

static const char *dt_name(int32_t dt) { return dt == SIPU_F32 ? "float32" : dt == SIPU_BF16 ? "bfloat16" : "float16"; }

static uint32_t rng_state = 2463534242u;
static uint32_t rng(void) {
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 17;
    rng_state ^= rng_state << 5;
    return rng_state;
}

/* random value of dtype dt stored at p (float in [-2, 2) rounded to dt); returns the stored value */
static float put_random(void *p, int32_t dt) {
    float v = (float) (rng() % 4096) / 1024.0f - 2.0f;
    if (dt == SIPU_F32) { memcpy(p, &v, 4); return v; }
    if (dt == SIPU_BF16) { uint16_t h = f32_to_bf16(v); memcpy(p, &h, 2); return bf16_to_f32(h); }
    uint16_t h = f32_to_f16(v);
    memcpy(p, &h, 2);
    return f16_to_f32(h);
}

static void check_mm_shape(int32_t dt, int M, int K, int N, int transposed_b) {
    int item = dt == SIPU_F32 ? 4 : 2;
    char *a = malloc((size_t) M * K * item + 1), *b = malloc((size_t) K * N * item + 1), *o = malloc((size_t) M * N * item + 1);
    float *af = malloc(sizeof(float) * M * K + 4), *bf = malloc(sizeof(float) * K * N + 4);
    for (int i = 0; i < M * K; i++) af[i] = put_random(a + (size_t) i * item, dt);
    /* bf[k * N + n]; stored [K, N] or [N, K] */
    for (int k = 0; k < K; k++)
        for (int n = 0; n < N; n++) {
            size_t at = transposed_b ? (size_t) n * K + k : (size_t) k * N + n;
            bf[k * N + n] = put_random(b + at * item, dt);
        }
    int64_t as[] = {M, K}, ast[] = {K, 1}, bsz[] = {K, N}, bst[] = {N, 1}, btst[] = {1, K}, os[] = {M, N}, ost[] = {N, 1};
    sipu_tensor ta = desc(a, dt, 2, as, ast), tb = desc(b, dt, 2, bsz, transposed_b ? btst : bst), to = desc(o, dt, 2, os, ost);
    CHECK(sipu_matmul(&to, &ta, &tb, NULL) == SIPU_OK, "%s", sipu_last_error());
    int bad = 0;
    for (int i = 0; i < M && bad < 5; i++)
        for (int j = 0; j < N; j++) {
            double s = 0, mag = 0;
            for (int k = 0; k < K; k++) {
                s += (double) af[i * K + k] * bf[k * N + j];
                mag += fabs((double) af[i * K + k] * bf[k * N + j]);
            }
            float got = load_f32(o + ((size_t) i * N + j) * item, dt);
            double tol = 1e-5 * mag + (dt == SIPU_F32 ? 1e-6 : dt == SIPU_BF16 ? 0x1p-8 * fabs(s) : 0x1p-11 * fabs(s)) + 1e-6;
            if (fabs(got - s) > tol) {
                bad++;
                CHECK(0, "%s mm [%d,%d]x[%d,%d]%s at %d,%d: %g vs %g", dt_name(dt), M, K, K, N, transposed_b ? "^T" : "", i, j, got, s);
            }
        }
    free(a); free(b); free(o); free(af); free(bf);
}

static void check_fp8_shape(int M, int K, int N, int32_t odt) {
    int KB = (K + 127) / 128, NB = (N + 127) / 128;
    uint8_t *a = malloc((size_t) M * K + 1), *b = malloc((size_t) N * K + 1);
    float *as = malloc(sizeof(float) * M * KB), *bs = malloc(sizeof(float) * NB * KB), *o = malloc(sizeof(float) * M * N + 4);
    for (int i = 0; i < M * K; i++) do a[i] = (uint8_t) rng(); while ((a[i] & 0x7F) == 0x7F);
    for (int i = 0; i < N * K; i++) do b[i] = (uint8_t) rng(); while ((b[i] & 0x7F) == 0x7F || (b[i] & 0x78) == 0x78);
    for (int i = 0; i < M * KB; i++) as[i] = (float) (rng() % 1000 + 1) * 1e-4f;
    for (int i = 0; i < NB * KB; i++) bs[i] = (float) (rng() % 1000 + 1) * 1e-4f;
    int64_t asz[] = {M, K}, ast[] = {K, 1}, bsz[] = {N, K}, assz[] = {M, KB}, asst[] = {KB, 1}, bssz[] = {NB, KB}, os[] = {M, N}, ost[] = {N, 1};
    sipu_tensor ta = desc(a, SIPU_F8E4M3FN, 2, asz, ast), tb = desc(b, SIPU_F8E4M3FN, 2, bsz, ast), tas = desc(as, SIPU_F32, 2, assz, asst),
                tbs = desc(bs, SIPU_F32, 2, bssz, asst), to = desc(o, odt, 2, os, ost);
    CHECK(sipu_fp8_gemm(&to, &ta, &tas, &tb, &tbs) == SIPU_OK, "%s", sipu_last_error());
    int bad = 0;
    for (int i = 0; i < M && bad < 5; i++)
        for (int j = 0; j < N; j++) {
            double s = 0, mag = 0;
            for (int kb = 0; kb < KB; kb++) {
                double part = 0, pm = 0;
                for (int k = kb * 128; k < K && k < kb * 128 + 128; k++) {
                    double p = (double) e4m3_to_f32(a[i * K + k]) * e4m3_to_f32(b[j * K + k]);
                    part += p;
                    pm += fabs(p);
                }
                double sc = (double) as[i * KB + kb] * bs[(j / 128) * KB + kb];
                s += part * sc;
                mag += pm * sc;
            }
            float got = load_f32((char *) o + ((size_t) i * N + j) * (odt == SIPU_F32 ? 4 : 2), odt);
            double tol = 1e-5 * mag + (odt == SIPU_BF16 ? 0x1p-8 * fabs(s) : 0) + 1e-30;
            if (fabs(got - s) > tol) {
                bad++;
                CHECK(0, "fp8_gemm [%d,%d]x[%d,%d]^T -> %s at %d,%d: %g vs %g", M, K, N, K, dt_name(odt), i, j, got, s);
            }
        }
    free(a); free(b); free(as); free(bs); free(o);
}

static void test_gemm_paths(void) {
    /* odd shapes: M, N, K off every tile (14x32, 6x16, 4x16), K off 128 and odd, small M (weight streaming) and large */
    static const int shapes[][3] = {{1, 37, 19}, {3, 301, 45}, {16, 129, 70}, {17, 515, 33}, {29, 77, 130}, {45, 1031, 97}, {2, 1, 5}, {200, 260, 300}, {9, 1300, 70},
                                       {4, 2100, 600} /* weight streaming with enough work for every thread */,
                                       {530, 600, 45} /* fp32 linear: two blocks of a's rows, two K blocks */};
    static const int32_t dts[] = {SIPU_F32, SIPU_BF16, SIPU_F16};
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
        for (int d = 0; d < 3; d++)
            for (int t = 0; t < 2; t++) check_mm_shape(dts[d], shapes[s][0], shapes[s][1], shapes[s][2], t);
    static const int f8[][3] = {{1, 200, 150}, {5, 300, 130}, {16, 1000, 260}, {20, 129, 300}, {37, 385, 129}, {3, 7, 9}, {130, 250, 270}, {7, 2100, 130}};
    for (size_t s = 0; s < sizeof f8 / sizeof f8[0]; s++) {
        check_fp8_shape(f8[s][0], f8[s][1], f8[s][2], SIPU_F32);
        check_fp8_shape(f8[s][0], f8[s][1], f8[s][2], SIPU_BF16);
    }
}

/*
 * bf16 GEMMs on the tiles of the AMX path (gemm_amx.c, where the CPU has it; the same checks run on
 * every other path): bf16 in, bf16 or float32 out (aten::mm.dtype), a and b each row-major or
 * transposed, shapes off every tile (16, 32), K panel (256) and fp32 block, and big enough for
 * several blocks per thread; fp8_gemm with K and N off the 128-wide scale blocks.
 */
static void check_mm_bf16_layout(int M, int K, int N, int ta_t, int tb_t, int32_t odt) {
    uint16_t *a = malloc((size_t) M * K * 2 + 2), *b = malloc((size_t) K * N * 2 + 2);
    float *af = malloc(sizeof(float) * M * K + 4), *bf = malloc(sizeof(float) * K * N + 4), *o = malloc(sizeof(float) * M * N + 4);
    for (int i = 0; i < M; i++)
        for (int k = 0; k < K; k++) af[i * K + k] = put_random(a + (ta_t ? (size_t) k * M + i : (size_t) i * K + k), SIPU_BF16);
    for (int k = 0; k < K; k++)
        for (int n = 0; n < N; n++) bf[k * N + n] = put_random(b + (tb_t ? (size_t) n * K + k : (size_t) k * N + n), SIPU_BF16);
    int64_t as[] = {M, K}, ast[] = {K, 1}, atst[] = {1, M}, bsz[] = {K, N}, bst[] = {N, 1}, btst[] = {1, K}, os[] = {M, N}, ost[] = {N, 1};
    sipu_tensor tA = desc(a, SIPU_BF16, 2, as, ta_t ? atst : ast), tB = desc(b, SIPU_BF16, 2, bsz, tb_t ? btst : bst), tO = desc(o, odt, 2, os, ost);
    CHECK(sipu_matmul(&tO, &tA, &tB, NULL) == SIPU_OK, "%s", sipu_last_error());
    int bad = 0;
    double *row = malloc(sizeof(double) * N), *mag = malloc(sizeof(double) * N);
    for (int i = 0; i < M && bad < 5; i++) {
        for (int n = 0; n < N; n++) row[n] = mag[n] = 0;
        for (int k = 0; k < K; k++) {
            double x = af[i * K + k];
            for (int n = 0; n < N; n++) {
                double p = x * bf[k * N + n];
                row[n] += p;
                mag[n] += fabs(p);
            }
        }
        for (int n = 0; n < N && bad < 5; n++) {
            float got = odt == SIPU_F32 ? o[(size_t) i * N + n] : bf16_to_f32(((uint16_t *) o)[(size_t) i * N + n]);
            double tol = 1e-5 * mag[n] + (odt == SIPU_BF16 ? 0x1p-8 * fabs(row[n]) : 0) + 1e-6;
            if (fabs(got - row[n]) > tol) {
                bad++;
                CHECK(0, "bf16 mm [%d,%d]%s x [%d,%d]%s -> %s at %d,%d: %g vs %g", M, K, ta_t ? "^T" : "", K, N, tb_t ? "^T" : "",
                      dt_name(odt), i, n, got, row[n]);
            }
        }
    }
    free(a); free(b); free(af); free(bf); free(o); free(row); free(mag);
}

static void test_gemm_amx_shapes(void) {
    /* {48, 4500, 70} and {600, 1100, 40}: several AMX K blocks, deep (few rows) and 1024 (rows over one A block) */
    static const int shapes[][3] = {{17, 33, 31}, {33, 95, 67}, {64, 256, 64}, {100, 513, 47}, {257, 300, 650}, {650, 129, 300}, {40, 1000, 1100},
                                    {48, 4500, 70}, {600, 1100, 40}};
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
        for (int l = 0; l < 4; l++) check_mm_bf16_layout(shapes[s][0], shapes[s][1], shapes[s][2], l & 1, l >> 1, l == 1 ? SIPU_BF16 : SIPU_F32);
    static const int f8[][3] = {{31, 300, 700}, {700, 260, 150}, {64, 128, 128}, {17, 1100, 257}, {40, 4400, 200}, {530, 1200, 70}};
    for (size_t s = 0; s < sizeof f8 / sizeof f8[0]; s++) check_fp8_shape(f8[s][0], f8[s][1], f8[s][2], s & 1 ? SIPU_BF16 : SIPU_F32);
}

/*
 * FP8 fused experts (block-scaled e4m3 weights, activations quantized per 128-group) against a
 * per-token loop in double: three experts with ~27 rows each (the packed / AMX GEMM) and a call of
 * three tokens (few rows per expert: the weight-streaming paths).
 */
static void quant_group_ref(const float *x, int n, float *q, float *s) {
    for (int g = 0; g * 128 < n; g++) {
        float amax = 0;
        for (int i = g * 128; i < n && i < g * 128 + 128; i++) amax = fmaxf(amax, fabsf(x[i]));
        float sc = fmaxf(amax, 1e-10f) / 448.0f;
        s[g] = sc;
        for (int i = g * 128; i < n && i < g * 128 + 128; i++) q[i] = e4m3_to_f32(f32_to_e4m3_sat(x[i] / sc));
    }
}

static void check_fp8_experts(int T, int E, int K, int H, int I) {
    const int KH = H / 128, KI = I / 128, I2 = 2 * I;
    float *hid = malloc(sizeof(float) * T * H), *x0 = malloc(sizeof(float) * T * H), *tw = malloc(sizeof(float) * T * K);
    int32_t *ids = malloc(sizeof(int32_t) * T * K);
    uint8_t *w1 = malloc((size_t) E * I2 * H), *w2 = malloc((size_t) E * H * I);
    float *s1 = malloc(sizeof(float) * E * (I2 / 128) * KH), *s2 = malloc(sizeof(float) * E * KH * KI);
    for (int i = 0; i < T * H; i++) hid[i] = x0[i] = (float) (rng() % 2001) / 1000.0f - 1.0f;
    for (int i = 0; i < E * I2 * H; i++) do w1[i] = (uint8_t) rng(); while ((w1[i] & 0x7F) == 0x7F || (w1[i] & 0x78) == 0x78);
    for (int i = 0; i < E * H * I; i++) do w2[i] = (uint8_t) rng(); while ((w2[i] & 0x7F) == 0x7F || (w2[i] & 0x78) == 0x78);
    for (int i = 0; i < E * (I2 / 128) * KH; i++) s1[i] = (float) (rng() % 1000 + 500) * 1e-6f;
    for (int i = 0; i < E * KH * KI; i++) s2[i] = (float) (rng() % 1000 + 500) * 1e-6f;
    for (int t = 0; t < T; t++)
        for (int k = 0; k < K; k++) {
            ids[t * K + k] = (t + k * (1 + t % 2)) % E; /* distinct per token for K <= 2 */
            tw[t * K + k] = (float) (rng() % 1000) / 1000.0f;
        }
    int64_t hs[] = {T, H}, hst[] = {H, 1}, w1s[] = {E, I2, H}, w1st[] = {(int64_t) I2 * H, H, 1}, w2s[] = {E, H, I}, w2st[] = {(int64_t) H * I, I, 1};
    int64_t ks[] = {T, K}, kst[] = {K, 1}, s1s[] = {E, I2 / 128, KH}, s1st[] = {(int64_t) (I2 / 128) * KH, KH, 1}, s2s[] = {E, KH, KI},
            s2st[] = {(int64_t) KH * KI, KI, 1};
    sipu_tensor th = desc(hid, SIPU_F32, 2, hs, hst), tw1 = desc(w1, SIPU_F8E4M3FN, 3, w1s, w1st), tw2 = desc(w2, SIPU_F8E4M3FN, 3, w2s, w2st);
    sipu_tensor ttw = desc(tw, SIPU_F32, 2, ks, kst), tid = desc(ids, SIPU_I32, 2, ks, kst), ts1 = desc(s1, SIPU_F32, 3, s1s, s1st),
                ts2 = desc(s2, SIPU_F32, 3, s2s, s2st);
    CHECK(sipu_fused_experts(&th, &tw1, &tw2, &ttw, &tid, NULL, &ts1, &ts2, 0) == SIPU_OK, "%s", sipu_last_error());
    float *xq = malloc(sizeof(float) * H), *xs = malloc(sizeof(float) * KH), *h2 = malloc(sizeof(float) * I), *hq = malloc(sizeof(float) * I),
          *hsc = malloc(sizeof(float) * KI);
    double *want = calloc((size_t) T * H, sizeof(double)), ss = 0, se = 0;
    for (int t = 0; t < T; t++) {
        quant_group_ref(x0 + t * H, H, xq, xs);
        for (int k = 0; k < K; k++) {
            int e = ids[t * K + k];
            for (int j = 0; j < I; j++) {
                double gu[2];
                for (int half = 0; half < 2; half++) {
                    int n = j + half * I;
                    double acc = 0;
                    for (int kb = 0; kb < KH; kb++) {
                        double part = 0;
                        for (int c = kb * 128; c < kb * 128 + 128; c++) part += (double) xq[c] * e4m3_to_f32(w1[((size_t) e * I2 + n) * H + c]);
                        acc += part * xs[kb] * s1[(e * (I2 / 128) + n / 128) * KH + kb];
                    }
                    gu[half] = acc;
                }
                h2[j] = (float) (gu[0] / (1.0 + exp(-gu[0])) * gu[1]);
            }
            quant_group_ref(h2, I, hq, hsc);
            for (int c = 0; c < H; c++) {
                double acc = 0;
                for (int kb = 0; kb < KI; kb++) {
                    double part = 0;
                    for (int q = kb * 128; q < kb * 128 + 128; q++) part += (double) hq[q] * e4m3_to_f32(w2[((size_t) e * H + c) * I + q]);
                    acc += part * hsc[kb] * s2[(e * KH + c / 128) * KI + kb];
                }
                want[t * H + c] += acc * tw[t * K + k];
            }
        }
    }
    for (int i = 0; i < T * H; i++) {
        ss += want[i] * want[i];
        se += (hid[i] - want[i]) * (hid[i] - want[i]);
    }
    double rms = sqrt(ss / (T * H)), err = sqrt(se / (T * H));
    /* h2's e4m3 codes may flip at midpoints between fp32 orders: an rms bound, as the Java cross-check uses */
    CHECK(rms > 0 && err <= 0.01 * rms, "fp8 experts T %d E %d top-%d H %d I %d: rms error %g of rms %g", T, E, K, H, I, err, rms);
    free(hid); free(x0); free(tw); free(ids); free(w1); free(w2); free(s1); free(s2);
    free(xq); free(xs); free(h2); free(hq); free(hsc); free(want);
}

static void test_fp8_experts(void) {
    check_fp8_experts(40, 3, 2, 256, 128);
    check_fp8_experts(3, 4, 2, 384, 256);
}

/* silu_and_mul with b = 1 gives silu itself: the vectorized exp against libm's over the whole range,
 * its clamps and the special values. */
static void test_silu_exp(void) {
    enum { N = 4096 };
    float *x = malloc(2 * N * sizeof(float)), *y = malloc(N * sizeof(float));
    const float special[] = {INFINITY, -INFINITY, NAN, 0.0f, -0.0f, 87.5f, -87.5f, 88.7f, -88.7f, 88.8f, -88.8f, 104.0f, -104.0f, 1e-30f};
    int ns = (int) (sizeof special / sizeof special[0]);
    for (int i = 0; i < N; i++) {
        x[i] = i < ns ? special[i] : -100.0f + 200.0f * (float) i / N;
        x[N + i] = 1.0f;
    }
    int64_t in_sz[] = {1, 2 * N}, in_st[] = {2 * N, 1}, out_sz[] = {1, N}, out_st[] = {N, 1};
    sipu_tensor tx = desc(x, SIPU_F32, 2, in_sz, in_st), ty = desc(y, SIPU_F32, 2, out_sz, out_st);
    CHECK(sipu_silu_and_mul(&ty, &tx) == SIPU_OK, "%s", sipu_last_error());
    for (int i = 0; i < N; i++) {
        float want = x[i] / (1.0f + expf(-x[i]));
        if (isnan(want)) CHECK(isnan(y[i]), "silu(%g): %g, want NaN", x[i], y[i]);
        else if (isinf(want)) CHECK(y[i] == want, "silu(%g): %g vs %g", x[i], y[i], want);
        else CHECK(fabsf(y[i] - want) <= 4e-7f * fabsf(want) + 1e-37f, "silu(%g): %.9g vs %.9g", x[i], y[i], want);
    }
    free(x);
    free(y);
}

/* max / argmax over rows longer than the chunks they are split into: ties go to the earlier chunk,
 * the first NaN wins outright, a constant row gives index 0. */
static void test_argmax_chunks(void) {
    enum { R = 4, N = 40000 };
    float *x = malloc(R * N * sizeof(float));
    for (int i = 0; i < R * N; i++) x[i] = (float) ((i * 7919) % 1000) / 1000.0f;
    x[0 * N + 20000] = 5.0f; x[0 * N + 39999] = 5.0f;   /* a tie across chunks */
    x[1 * N + 3] = 9.0f; x[1 * N + 33000] = NAN; x[1 * N + 35000] = NAN;
    for (int j = 0; j < N; j++) x[2 * N + j] = -1.5f;
    x[3 * N + N - 1] = 2.0f;                             /* the last element of the last chunk */
    int64_t sz[] = {R, N}, st[] = {N, 1}, osz[] = {R}, ost[] = {1};
    int64_t arg[R], idx[R];
    float val[R];
    sipu_tensor tx = desc(x, SIPU_F32, 2, sz, st), ta = desc(arg, SIPU_I64, 1, osz, ost), tv = desc(val, SIPU_F32, 1, osz, ost),
                ti = desc(idx, SIPU_I64, 1, osz, ost);
    CHECK(sipu_reduce_rows(SIPU_REDUCE_ARGMAX, &ta, NULL, &tx) == SIPU_OK, "%s", sipu_last_error());
    CHECK(sipu_reduce_rows(SIPU_REDUCE_MAX, &tv, &ti, &tx) == SIPU_OK, "%s", sipu_last_error());
    const int64_t want[R] = {20000, 33000, 0, N - 1};
    for (int r = 0; r < R; r++) {
        CHECK(arg[r] == want[r] && idx[r] == want[r], "argmax row %d: %lld / %lld, want %lld", r, (long long) arg[r], (long long) idx[r], (long long) want[r]);
        float w = x[r * N + want[r]];
        CHECK(isnan(w) ? isnan(val[r]) : val[r] == w, "max row %d: %g vs %g", r, val[r], w);
    }
    free(x);
}

/* topk of fp32 rows (its own selection path) against the first k of the stable sort of the same
 * rows: many ties, NaN in some rows, an all-NaN row, both directions, k up to 64. */
static void test_topk_f32_rows(void) {
    enum { R = 5, N = 1000 };
    float *x = malloc(R * N * sizeof(float)), *sv = malloc(R * N * sizeof(float)), kv[R * 64];
    int64_t *si = malloc(R * N * sizeof(int64_t)), ki[R * 64];
    for (int i = 0; i < R * N; i++) x[i] = (float) ((i * 7919) % 37) - 18.0f;
    x[1 * N + 500] = NAN; x[1 * N + 7] = NAN;
    for (int j = 0; j < N; j++) x[2 * N + j] = NAN;
    for (int j = 0; j < N; j += 3) x[3 * N + j] = NAN;
    int64_t sz[] = {R, N}, st[] = {N, 1};
    sipu_tensor tx = desc(x, SIPU_F32, 2, sz, st), tsv = desc(sv, SIPU_F32, 2, sz, st), tsi = desc(si, SIPU_I64, 2, sz, st);
    const int64_t ks[] = {1, 5, 64};
    for (int desc_ = 0; desc_ <= 1; desc_++) {
        CHECK(sipu_sort_rows(&tsv, &tsi, &tx, desc_) == SIPU_OK, "%s", sipu_last_error());
        for (int q = 0; q < 3; q++) {
            int64_t k = ks[q], ksz[] = {R, k}, kst[] = {k, 1};
            sipu_tensor tkv = desc(kv, SIPU_F32, 2, ksz, kst), tki = desc(ki, SIPU_I64, 2, ksz, kst);
            CHECK(sipu_topk_rows(&tkv, &tki, &tx, k, desc_) == SIPU_OK, "%s", sipu_last_error());
            for (int r = 0; r < R; r++)
                for (int64_t j = 0; j < k; j++)
                    CHECK(ki[r * k + j] == si[r * N + j] && memcmp(&kv[r * k + j], &sv[r * N + j], 4) == 0,
                          "topk k=%lld %s row %d pos %lld: index %lld, sort says %lld", (long long) k, desc_ ? "largest" : "smallest", r,
                          (long long) j, (long long) ki[r * k + j], (long long) si[r * N + j]);
        }
    }
    free(x); free(sv); free(si);
}

/* PyTorch's order for a stable sort: NaN above every number, -0.0 equal to 0.0, ties by position. */
static int sort_desc_;
static int cmp_sorted(const void *pa, const void *pb) {
    const float *a = pa, *b = pb; /* {value, position} pairs */
    int an = a[0] != a[0], bn = b[0] != b[0], c = 0;
    if (an || bn) c = an - bn;
    else c = (a[0] > b[0]) - (a[0] < b[0]);
    if (sort_desc_) c = -c;
    return c ? c : (a[1] > b[1]) - (a[1] < b[1]);
}

/* sort of fp32 rows (a radix sort of folded keys) against qsort with the comparison above */
static void test_sort_f32_rows(void) {
    enum { R = 4, N = 777 };
    float *x = malloc(R * N * sizeof(float)), *v = malloc(R * N * sizeof(float)), *pairs = malloc(2 * N * sizeof(float));
    int64_t *ix = malloc(R * N * sizeof(int64_t));
    const float special[] = {NAN, -0.0f, 0.0f, INFINITY, -INFINITY, 1e-45f, -1e-45f, 3.0f, -3.0f};
    for (int i = 0; i < R * N; i++) x[i] = (i * 7919) % 5 == 0 ? special[(i / 5) % 9] : (float) ((i * 7919) % 61) / 8.0f - 3.0f;
    for (int j = 0; j < N; j++) x[3 * N + j] = 2.5f; /* one key: every pass skipped */
    int64_t sz[] = {R, N}, st[] = {N, 1};
    sipu_tensor tx = desc(x, SIPU_F32, 2, sz, st), tv = desc(v, SIPU_F32, 2, sz, st), ti = desc(ix, SIPU_I64, 2, sz, st);
    for (sort_desc_ = 0; sort_desc_ <= 1; sort_desc_++) {
        CHECK(sipu_sort_rows(&tv, &ti, &tx, sort_desc_) == SIPU_OK, "%s", sipu_last_error());
        for (int r = 0; r < R; r++) {
            for (int j = 0; j < N; j++) pairs[2 * j] = x[r * N + j], pairs[2 * j + 1] = (float) j;
            qsort(pairs, N, 2 * sizeof(float), cmp_sorted);
            int bad = 0;
            for (int j = 0; j < N && bad < 3; j++)
                if (ix[r * N + j] != (int64_t) pairs[2 * j + 1] || memcmp(&v[r * N + j], &x[r * N + (int64_t) pairs[2 * j + 1]], 4)) {
                    bad++;
                    CHECK(0, "sort %s row %d pos %d: index %lld, want %lld", sort_desc_ ? "descending" : "ascending", r, j,
                          (long long) ix[r * N + j], (long long) pairs[2 * j + 1]);
                }
        }
    }
    free(x); free(v); free(pairs); free(ix);
}

static void test_norms(void) {
    int R = 5, H = 300;
    uint16_t *x = malloc(2 * R * H), *w = malloc(2 * H), *o = malloc(2 * R * H);
    for (int i = 0; i < R * H; i++) x[i] = f32_to_bf16((float) ((i * 37) % 101) / 50.0f - 1.0f);
    for (int i = 0; i < H; i++) w[i] = f32_to_bf16(0.5f + (float) i / H);
    int64_t sz[] = {R, H}, st[] = {H, 1}, wsz[] = {H}, wst[] = {1};
    sipu_tensor tx = desc(x, SIPU_BF16, 2, sz, st), tw = desc(w, SIPU_BF16, 1, wsz, wst), to = desc(o, SIPU_BF16, 2, sz, st);
    CHECK(sipu_rms_norm(&to, &tx, &tw, 1e-6) == SIPU_OK, "%s", sipu_last_error());
    for (int r = 0; r < R; r++) {
        double ss = 0;
        for (int i = 0; i < H; i++) ss += (double) bf16_to_f32(x[r * H + i]) * bf16_to_f32(x[r * H + i]);
        float inv = (float) (1.0 / sqrt(ss / H + 1e-6));
        for (int i = 0; i < H; i++) {
            float want = bf16_to_f32(f32_to_bf16(bf16_to_f32(f32_to_bf16(bf16_to_f32(x[r * H + i]) * inv)) * bf16_to_f32(w[i])));
            float got = bf16_to_f32(o[r * H + i]);
            CHECK(fabsf(got - want) <= 0.0079f * fabsf(want) + 1e-6f, "rms_norm %d,%d: %g vs %g", r, i, got, want);
        }
    }
    free(x); free(w); free(o);
}

/* embedding-style gather: rows of a [5, 3] table picked by ids; a bad id fails before any store */
static void test_index_gather(void) {
    float table[15], out[12];
    for (int i = 0; i < 15; i++) table[i] = (float) i;
    int64_t ids[4] = {4, 0, -1, 2};
    int64_t ts[2] = {4, 3}, src_st[2] = {0, 1}, out_st[2] = {3, 1}, id_st[2] = {1, 0};
    sipu_tensor to = desc(out, SIPU_F32, 2, ts, out_st), tsrc = desc(table, SIPU_F32, 2, ts, src_st);
    sipu_tensor tid = desc(ids, SIPU_I64, 2, ts, id_st);
    const sipu_tensor *idx[1] = {&tid};
    int64_t size = 5, stride = 3;
    CHECK(sipu_index_gather(&to, &tsrc, 1, idx, &size, &stride, 1) == SIPU_OK, "%s", sipu_last_error());
    int64_t want[4] = {4, 0, 4, 2};
    for (int r = 0; r < 4; r++)
        for (int c = 0; c < 3; c++) CHECK(out[r * 3 + c] == (float) (want[r] * 3 + c), "gather %d,%d", r, c);
    for (int i = 0; i < 12; i++) out[i] = -7;
    CHECK(sipu_index_gather(&to, &tsrc, 1, idx, &size, &stride, 0) == SIPU_ERR_INDEX_OUT_OF_RANGE, "negative id refused");
    ids[2] = 5;
    CHECK(sipu_index_gather(&to, &tsrc, 1, idx, &size, &stride, 1) == SIPU_ERR_INDEX_OUT_OF_RANGE, "id 5 of 5 refused");
    for (int i = 0; i < 12; i++) CHECK(out[i] == -7, "nothing written at %d", i);
    /* index_put_ with accumulate: duplicates all count */
    float acc[5] = {0};
    int64_t pids[3] = {1, 1, 3}, vs[1] = {3}, one[1] = {1}, zero[1] = {0};
    float vals[3] = {1, 2, 4};
    sipu_tensor tdst = desc(acc, SIPU_F32, 1, vs, zero), tv = desc(vals, SIPU_F32, 1, vs, one), tp = desc(pids, SIPU_I64, 1, vs, one);
    const sipu_tensor *pidx[1] = {&tp};
    int64_t psize = 5, pstride = 1;
    CHECK(sipu_index_scatter(&tdst, &tv, 1, pidx, &psize, &pstride, 1, 1) == SIPU_OK, "%s", sipu_last_error());
    CHECK(acc[1] == 3 && acc[3] == 4 && acc[0] == 0, "accumulate: %g %g", acc[1], acc[3]);
}

static void test_sort_select_count(void) {
    /* one row of 6: ties keep input order, NaN sorts above every number */
    float x[6] = {2, NAN, -1, 2, 0, -1}, v[6];
    int64_t idx[6], sz[2] = {1, 6}, st[2] = {6, 1};
    sipu_tensor tx = desc(x, SIPU_F32, 2, sz, st), tv = desc(v, SIPU_F32, 2, sz, st), ti = desc(idx, SIPU_I64, 2, sz, st);
    CHECK(sipu_sort_rows(&tv, &ti, &tx, 0) == SIPU_OK, "%s", sipu_last_error());
    int64_t asc[6] = {2, 5, 4, 0, 3, 1};
    for (int j = 0; j < 6; j++) CHECK(idx[j] == asc[j], "ascending %d: %lld", j, (long long) idx[j]);
    CHECK(isnan(v[5]) && v[0] == -1, "values follow the indices");
    CHECK(sipu_sort_rows(&tv, &ti, &tx, 1) == SIPU_OK, "%s", sipu_last_error());
    int64_t desc_order[6] = {1, 0, 3, 4, 2, 5};
    for (int j = 0; j < 6; j++) CHECK(idx[j] == desc_order[j], "descending %d: %lld", j, (long long) idx[j]);
    int64_t ksz[2] = {1, 2}, kst[2] = {2, 1};
    sipu_tensor kv = desc(v, SIPU_F32, 2, ksz, kst), ki = desc(idx, SIPU_I64, 2, ksz, kst);
    CHECK(sipu_topk_rows(&kv, &ki, &tx, 2, 0) == SIPU_OK && idx[0] == 2 && idx[1] == 5, "smallest two, ties to the lower index");
    CHECK(sipu_topk_rows(&kv, &ki, &tx, 7, 1) == SIPU_ERR_INVALID_ARGUMENT, "k beyond the row refused");
    /* nonzero of a transposed 2x3 view: row-major over the view */
    float m[6] = {0, 1, 0, 2, 0, 3}; /* storage [2, 3]; view [3, 2] strides {1, 3} */
    int64_t msz[2] = {3, 2}, mst[2] = {1, 3}, count = -1, nz[6], osz[2] = {3, 2}, ost[2] = {2, 1};
    sipu_tensor tm = desc(m, SIPU_F32, 2, msz, mst), tn = desc(nz, SIPU_I64, 2, osz, ost);
    CHECK(sipu_count_nonzero(&tm, &count) == SIPU_OK && count == 3, "count %lld", (long long) count);
    CHECK(sipu_nonzero(&tn, &tm) == SIPU_OK, "%s", sipu_last_error());
    int64_t want_nz[6] = {0, 1, 1, 0, 2, 1};
    for (int j = 0; j < 6; j++) CHECK(nz[j] == want_nz[j], "nonzero %d: %lld", j, (long long) nz[j]);
    /* bincount refuses a value beyond its bins before writing */
    int64_t vals[4] = {1, 3, 3, 0}, bins[4] = {9, 9, 9, 9}, vsz[1] = {4}, bsz[1] = {3}, one[1] = {1};
    sipu_tensor tvals = desc(vals, SIPU_I64, 1, vsz, one), tb = desc(bins, SIPU_I64, 1, bsz, one);
    CHECK(sipu_bincount(&tb, &tvals, NULL) == SIPU_ERR_INDEX_OUT_OF_RANGE, "3 of 3 bins refused");
    CHECK(bins[0] == 9 && bins[2] == 9, "nothing written");
    bsz[0] = 4;
    tb = desc(bins, SIPU_I64, 1, bsz, one);
    CHECK(sipu_bincount(&tb, &tvals, NULL) == SIPU_OK && bins[0] == 1 && bins[1] == 1 && bins[2] == 0 && bins[3] == 2, "counts");
    /* the sampler is SplittableRandom's stream: draw 0 of seed 0 */
    CHECK(sipu_uniform(0, 0) == (double) (0xe220a8397b1dcdafULL >> 11) * 0x1.0p-53, "uniform(0, 0) = %.17g", sipu_uniform(0, 0));
}

static void test_probes(void) {
    /* the counts the benchmark divides by: per thread, 32 lanes x accumulators x iterations, never 0 */
    double f = sipu_probe_fma_f32(1000), d = sipu_probe_dot_bf16(1000);
    CHECK(f > 0 && d >= f, "fma %g, bf16 dot %g flops", f, d);
    CHECK(sipu_probe_fma_f32(0) == 0, "no iterations, no flops");
    double x = sipu_probe_amx_bf16(100);
    CHECK(x == 0 || x == 100 * 4 * 2 * 16 * 16 * 32.0 * sipu_get_num_threads(), "amx %g flops", x);
    for (int64_t n = 0; n <= 1000; n += 37) {
        float *a = malloc(sizeof(float) * (n + 1)), *b = malloc(sizeof(float) * (n + 1)), *c = malloc(sizeof(float) * (n + 1));
        for (int64_t i = 0; i < n; i++) { b[i] = (float) i; c[i] = 0.5f * (float) i; a[i] = -1; }
        a[n] = 42;
        CHECK(sipu_probe_triad(a, b, c, n, 2.0f, 3) == 36.0 * (double) n, "triad bytes n=%lld", (long long) n);
        for (int64_t i = 0; i < n; i++) CHECK(a[i] == 2.0f * (float) i, "triad a[%lld]", (long long) i);
        CHECK(a[n] == 42, "triad wrote past n=%lld", (long long) n);
        free(a); free(b); free(c);
    }
}


/* ---- attention against a full score matrix in double ---- */

static float attn_rand(uint32_t *s) {
    *s = *s * 1664525u + 1013904223u;
    return (float) ((*s >> 8) & 0xFFFF) / 32768.0f - 1.0f;
}

/*
 * B sequences (lq[b] queries, lk[b] keys) of Hq query and Hk kv heads, head dims D (q, k) and Dv,
 * packed and through a paged cache of 16-key blocks with a shuffled table, in f32 or bf16.
 */
static void check_attention(int32_t dt, int B, const int *lq, const int *lk, int Hq, int Hk, int D, int Dv, int64_t wl, int64_t wr,
                            double softcap, double tol) {
    int tq = 0, tk = 0, cuq[8], cuk[8], page = 16, per = 0;
    cuq[0] = cuk[0] = 0;
    for (int b = 0; b < B; b++) {
        cuq[b + 1] = tq += lq[b];
        cuk[b + 1] = tk += lk[b];
        if ((lk[b] + page - 1) / page > per) per = (lk[b] + page - 1) / page;
    }
    const int item = dt == SIPU_F32 ? 4 : 2, blocks = B * per;
    float *q = malloc(sizeof(float) * tq * Hq * D), *k = malloc(sizeof(float) * tk * Hk * D), *v = malloc(sizeof(float) * tk * Hk * Dv);
    uint32_t seed = (uint32_t) (D * 131 + Hq * 7 + B + (int) wl);
    for (int i = 0; i < tq * Hq * D; i++) q[i] = attn_rand(&seed);
    for (int i = 0; i < tk * Hk * D; i++) k[i] = attn_rand(&seed);
    for (int i = 0; i < tk * Hk * Dv; i++) v[i] = attn_rand(&seed);
    if (dt == SIPU_BF16) {
        for (int i = 0; i < tq * Hq * D; i++) q[i] = bf16_to_f32(f32_to_bf16(q[i]));
        for (int i = 0; i < tk * Hk * D; i++) k[i] = bf16_to_f32(f32_to_bf16(k[i]));
        for (int i = 0; i < tk * Hk * Dv; i++) v[i] = bf16_to_f32(f32_to_bf16(v[i]));
    }
    const double scale = 1 / sqrt((double) D);
    double *want = calloc((size_t) tq * Hq * Dv, sizeof(double)), *wlse = malloc(sizeof(double) * Hq * tq), *sc = malloc(sizeof(double) * tk);
    for (int b = 0; b < B; b++)
        for (int i = 0; i < lq[b]; i++)
            for (int h = 0; h < Hq; h++) {
                int row = cuq[b] + i, kh = h / (Hq / Hk);
                long pos = i + lk[b] - lq[b];
                double mx = -INFINITY, sum = 0;
                for (int j = 0; j < lk[b]; j++) {
                    int vis = (wr < 0 || j <= pos + wr) && (wl < 0 || j >= pos - wl);
                    double x = 0;
                    for (int c = 0; c < D; c++) x += (double) q[(row * Hq + h) * D + c] * k[((cuk[b] + j) * Hk + kh) * D + c];
                    x *= (double) (float) scale;
                    if (softcap > 0) x = softcap * tanh(x / softcap);
                    sc[j] = vis ? x : -INFINITY;
                    if (sc[j] > mx) mx = sc[j];
                }
                for (int j = 0; j < lk[b]; j++) sum += sc[j] == -INFINITY ? 0 : exp(sc[j] - mx);
                for (int j = 0; j < lk[b]; j++) {
                    if (sc[j] == -INFINITY) continue;
                    double pr = exp(sc[j] - mx) / sum;
                    for (int c = 0; c < Dv; c++) want[(row * Hq + h) * Dv + c] += pr * v[((cuk[b] + j) * Hk + kh) * Dv + c];
                }
                wlse[h * tq + row] = sum > 0 ? mx + log(sum) : INFINITY;
            }
    /* device layouts */
    char *dq = malloc((size_t) tq * Hq * D * item), *dk = malloc((size_t) tk * Hk * D * item), *dv = malloc((size_t) tk * Hk * Dv * item);
    char *kc = calloc((size_t) blocks * page * Hk * D, item), *vc = calloc((size_t) blocks * page * Hk * Dv, item);
    char *out = malloc((size_t) tq * Hq * Dv * item);
    float *lse = malloc(sizeof(float) * Hq * tq);
    int32_t *table = malloc(sizeof(int32_t) * B * per), used[8], cq[8], ck[8];
    for (int i = 0; i < tq * Hq * D; i++) store_f32(dq + (size_t) i * item, dt, q[i]);
    for (int i = 0; i < tk * Hk * D; i++) store_f32(dk + (size_t) i * item, dt, k[i]);
    for (int i = 0; i < tk * Hk * Dv; i++) store_f32(dv + (size_t) i * item, dt, v[i]);
    for (int b = 0; b <= B; b++) cq[b] = cuq[b], ck[b] = cuk[b];
    for (int b = 0; b < B; b++) {
        used[b] = lk[b];
        for (int blk = 0; blk < per; blk++) table[b * per + blk] = (blk * B + b * 7 + 3) % blocks;
        for (int j = 0; j < lk[b]; j++) {
            int slot = table[b * per + j / page] * page + j % page;
            memcpy(kc + (size_t) slot * Hk * D * item, dk + (size_t) (cuk[b] + j) * Hk * D * item, (size_t) Hk * D * item);
            memcpy(vc + (size_t) slot * Hk * Dv * item, dv + (size_t) (cuk[b] + j) * Hk * Dv * item, (size_t) Hk * Dv * item);
        }
    }
    int64_t sq[] = {tq, Hq, D}, sqs[] = {Hq * D, D, 1}, so[] = {tq, Hq, Dv}, sos[] = {Hq * Dv, Dv, 1};
    int64_t sk[] = {tk, Hk, D}, sks[] = {Hk * D, D, 1}, sv[] = {tk, Hk, Dv}, svs[] = {Hk * Dv, Dv, 1};
    int64_t pk[] = {blocks, page, Hk, D}, pks[] = {page * Hk * D, Hk * D, D, 1}, pv[] = {blocks, page, Hk, Dv}, pvs[] = {page * Hk * Dv, Hk * Dv, Dv, 1};
    int64_t sl[] = {Hq, tq}, sls[] = {tq, 1}, sc1[] = {B + 1}, sb[] = {B}, one[] = {1}, st[] = {B, per}, sts[] = {per, 1};
    sipu_tensor tQ = desc(dq, dt, 3, sq, sqs), tO = desc(out, dt, 3, so, sos), tK = desc(dk, dt, 3, sk, sks), tV = desc(dv, dt, 3, sv, svs);
    sipu_tensor tKc = desc(kc, dt, 4, pk, pks), tVc = desc(vc, dt, 4, pv, pvs), tL = desc(lse, SIPU_F32, 2, sl, sls);
    sipu_tensor tcq = desc(cq, SIPU_I32, 1, sc1, one), tck = desc(ck, SIPU_I32, 1, sc1, one), tu = desc(used, SIPU_I32, 1, sb, one);
    sipu_tensor tt = desc(table, SIPU_I32, 2, st, sts);
    for (int paged = 0; paged < 2; paged++) {
        sipu_status r = paged ? sipu_attention(&tO, &tL, &tQ, &tKc, &tVc, &tcq, NULL, &tu, &tt, scale, wl, wr, softcap)
                              : sipu_attention(&tO, &tL, &tQ, &tK, &tV, &tcq, &tck, NULL, NULL, scale, wl, wr, softcap);
        CHECK(r == SIPU_OK, "attention: %s", sipu_last_error());
        int bad = 0;
        for (int i = 0; i < tq * Hq * Dv && bad < 5; i++) {
            double g = load_f32(out + (size_t) i * item, dt);
            if (!(fabs(g - want[i]) <= tol * fabs(want[i]) + tol)) {
                bad++;
                CHECK(0, "attention %s %s D=%d Dv=%d Hq=%d Hk=%d win=(%lld,%lld) cap=%g: out[%d] = %g, want %g", dt == SIPU_F32 ? "f32" : "bf16",
                      paged ? "paged" : "packed", D, Dv, Hq, Hk, (long long) wl, (long long) wr, softcap, i, g, want[i]);
            }
        }
        for (int i = 0; i < Hq * tq && bad < 5; i++)
            if (!(fabs(lse[i] - wlse[i]) <= 1e-4 * fabs(wlse[i]) + 1e-4) && !(isinf(wlse[i]) && isinf(lse[i]))) {
                bad++;
                CHECK(0, "attention lse[%d] = %g, want %g", i, lse[i], wlse[i]);
            }
    }
    free(q); free(k); free(v); free(want); free(wlse); free(sc); free(dq); free(dk); free(dv); free(kc); free(vc); free(out); free(lse); free(table);
}

static void test_attention(void) {
    const int lq[] = {1, 37, 5}, lk[] = {700, 37, 90};
    for (int dt = 0; dt < 2; dt++) {
        int32_t t = dt ? SIPU_BF16 : SIPU_F32;
        double tol = dt ? 2e-2 : 2e-5;
        check_attention(t, 3, lq, lk, 6, 2, 72, 72, -1, 0, 0.0, tol);
        check_attention(t, 3, lq, lk, 6, 2, 72, 40, 20, 0, 15.0, tol);
        check_attention(t, 3, lq, lk, 6, 2, 128, 128, -1, -1, 0.0, tol);
        check_attention(t, 3, lq, lk, 4, 4, 33, 17, 3, 2, 0.0, tol);
        /* one long decode row (too little work for a second thread) */
        const int dq[] = {1}, dk[] = {700}, dq2[] = {1, 2}, dk2[] = {300, 41};
        check_attention(t, 1, dq, dk, 1, 1, 128, 128, -1, 0, 0.0, tol);
        check_attention(t, 1, dq, dk, 8, 8, 64, 64, 100, 0, 0.0, tol);
        /* enough work for every thread (small steps run on one): the keys split and merged */
        const int lq1[] = {1}, lk1[] = {6000};
        check_attention(t, 1, lq1, lk1, 8, 8, 128, 128, -1, 0, 0.0, tol);
        /* many heads of a decode step read key row by key row */
        check_attention(t, 2, dq2, dk2, 32, 16, 64, 48, -1, 0, 0.0, tol);
        /* more queries than keys: the first rows see nothing (0, lse +inf) */
        const int wq[] = {9}, wk[] = {4};
        check_attention(t, 1, wq, wk, 2, 1, 16, 16, -1, 0, 0.0, tol);
    }
}

/* ---- softmax rows (the vectorized exp included) against double ---- */

static void test_softmax(void) {
    static const int ns[] = {1, 5, 16, 17, 100, 4099};
    uint32_t seed = 7;
    for (int t = 0; t < 6; t++) {
        const int N = ns[t], R = 6;
        float *x = malloc(sizeof(float) * R * N), *o = malloc(sizeof(float) * R * N);
        for (int i = 0; i < R * N; i++) x[i] = 20.0f * attn_rand(&seed);
        for (int j = 0; j < N; j++) {
            if (j % 3 == 1) x[1 * N + j] = -INFINITY;  /* masked entries */
            x[2 * N + j] = j == N / 2 ? 0.0f : -90.0f - (float) j; /* results down into the subnormals */
            if (j == N - 1) x[3 * N + j] = NAN;
            x[4 * N + j] = 80.0f + 0.001f * (float) j;       /* near expf's overflow before the shift */
            x[5 * N + j] = -INFINITY;                         /* a fully masked row: NaN as in PyTorch */
        }
        int64_t sz[] = {R, N}, st[] = {N, 1};
        sipu_tensor to = desc(o, SIPU_F32, 2, sz, st), ti = desc(x, SIPU_F32, 2, sz, st);
        for (int lg = 0; lg < 2; lg++) {
            CHECK(sipu_softmax_rows(&to, &ti, lg) == SIPU_OK, "%s", sipu_last_error());
            int bad = 0;
            for (int r = 0; r < R; r++) {
                double mx = -INFINITY, z = 0;
                int nan = 0;
                for (int j = 0; j < N; j++) { double v = x[r * N + j]; if (v != v) nan = 1; else if (v > mx) mx = v; }
                if (nan) mx = NAN;
                for (int j = 0; j < N; j++) z += exp((double) x[r * N + j] - mx);
                for (int j = 0; j < N && bad < 5; j++) {
                    double v = (double) x[r * N + j] - mx, w = lg ? v - log(z) : exp(v) / z, g = o[r * N + j];
                    int ok = isnan(w) ? isnan(g) : (w == g || fabs(g - w) <= 4e-6 * fabs(w) + (lg ? 4e-6 : 1e-44));
                    if (!ok) {
                        bad++;
                        CHECK(0, "%s N=%d row %d [%d] = %g, want %g", lg ? "log_softmax" : "softmax", N, r, j, g, w);
                    }
                }
            }
        }
        free(x); free(o);
    }
}

/* ---- contiguous float casts (the vectorized paths) bit for bit against convert.h ---- */

static void cast_check(int32_t from, const void *src, int32_t to, int64_t n, const char *what) {
    int fi = from == SIPU_F32 ? 4 : 2, ti = to == SIPU_F32 ? 4 : 2;
    char *dst = malloc((size_t) n * ti);
    int64_t sz[] = {n}, one[] = {1};
    sipu_tensor td = desc(dst, to, 1, sz, one), ts = desc((void *) src, from, 1, sz, one);
    CHECK(sipu_copy(&td, &ts) == SIPU_OK, "%s", sipu_last_error());
    int bad = 0;
    for (int64_t i = 0; i < n && bad < 5; i++) {
        const char *s = (const char *) src + i * fi;
        float f = load_f32(s, from);
        char want[4];
        if (from != SIPU_F32 && to != SIPU_F32) store_f32(want, to, f);   /* via fp32, as c10 converts */
        else if (to == SIPU_F32) memcpy(want, &f, 4);
        else store_f32(want, to, f);
        if (memcmp(want, dst + i * ti, (size_t) ti)) {
            bad++;
            uint32_t w = 0, g = 0, x = 0;
            memcpy(&w, want, (size_t) ti), memcpy(&g, dst + i * ti, (size_t) ti), memcpy(&x, s, (size_t) fi);
            CHECK(0, "%s: element %lld (0x%x) gives 0x%x, want 0x%x", what, (long long) i, x, g, w);
        }
    }
    free(dst);
}

static void test_casts(void) {
    /* every 16-bit pattern, five times over so the long-run (streaming) path is taken too */
    const int64_t n16 = 5 * 65536 + 13;
    uint16_t *h = malloc(sizeof(uint16_t) * n16);
    for (int64_t i = 0; i < n16; i++) h[i] = (uint16_t) (i * 40503u);
    cast_check(SIPU_F16, h, SIPU_F32, n16, "f16 -> f32");
    cast_check(SIPU_BF16, h, SIPU_F32, n16, "bf16 -> f32");
    cast_check(SIPU_F16, h, SIPU_BF16, n16, "f16 -> bf16");
    cast_check(SIPU_BF16, h, SIPU_F16, n16, "bf16 -> f16");
    cast_check(SIPU_F16, h + 3, SIPU_F32, 1000, "f16 -> f32, short and misaligned");
    /* f32: each f16 value, the midpoints to its neighbours and one ulp either side, NaN payloads, subnormals, overflow */
    const int64_t n32 = 6 * 65536 + 64;
    uint32_t *u = malloc(sizeof(uint32_t) * n32);
    int64_t m = 0;
    for (uint32_t b = 0; b < 65536; b++) {
        float f = f16_to_f32((uint16_t) b), g = f16_to_f32((uint16_t) (b + 1));
        float mid = isfinite(f) && isfinite(g) ? (f + g) / 2 : f;
        uint32_t fb, mb;
        memcpy(&fb, &f, 4), memcpy(&mb, &mid, 4);
        u[m++] = fb, u[m++] = mb, u[m++] = mb + 1, u[m++] = mb - 1, u[m++] = fb ^ (b << 7), u[m++] = b * 2654435761u;
    }
    const uint32_t special[] = {0x7F800001u, 0xFFFFFFFFu, 0x7FC00001u, 0xFFC12345u, 0x7F800000u, 0xFF800000u, 0x00000001u, 0x807FFFFFu,
                                0x477FF000u, 0x477FEFFFu, 0x47800000u, 0x33000000u, 0x33000001u, 0x387FC000u, 0x3F808000u, 0x3F818000u};
    for (int i = 0; i < 16; i++) u[m++] = special[i];
    while (m < n32) u[m] = (uint32_t) m * 0x9E3779B9u, m++;
    cast_check(SIPU_F32, u, SIPU_F16, n32, "f32 -> f16");
    cast_check(SIPU_F32, u, SIPU_BF16, n32, "f32 -> bf16");
    cast_check(SIPU_F32, u + 5, SIPU_F16, 777, "f32 -> f16, short and misaligned");
    cast_check(SIPU_F32, u + n32 - 40, SIPU_BF16, 40, "f32 -> bf16 specials");
    free(h);
    free(u);
}

int main(void) {
    printf("sipu_kernels %s, SIMD %s, %d threads\n", sipu_version(), sipu_simd_name(), sipu_get_num_threads());
    test_conversions();
    test_binary_broadcast();
    test_copy_fill_unary();
    test_matmul();
    test_gemm_paths();
    test_gemm_amx_shapes();
    test_fp8_experts();
    test_norms();
    test_silu_exp();
    test_argmax_chunks();
    test_topk_f32_rows();
    test_sort_f32_rows();
    test_index_gather();
    test_sort_select_count();
    test_probes();
    test_attention();
    test_softmax();
    test_casts();
    sipu_set_num_threads(1);
    test_probes();
    test_casts();
    test_attention();
    test_binary_broadcast();
    test_matmul();
    test_gemm_paths();
    test_gemm_amx_shapes();
    test_fp8_experts();
    if (failures) {
        printf("%d checks failed\n", failures);
        return 1;
    }
    printf("all checks passed\n");
    return 0;
}
