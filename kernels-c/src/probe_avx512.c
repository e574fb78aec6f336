/*
 * The AVX-512 probe bodies. Sixteen independent accumulators: FMA latency is 4 cycles and a core
 * issues up to two 512-bit FMAs a cycle (Intel) or one double-pumped (Zen 4), so 8 chains are the
 * least that keep both pipes full; 16 leave margin for longer latencies and still fit in 32 zmm.
 */
#include "probe.h"

#include <immintrin.h>
#include <stdint.h>

#define ACC 16

double sipu_probe_fma_avx512(int64_t iters, float *sink) {
    __m512 acc[ACC];
    for (int j = 0; j < ACC; j++) acc[j] = _mm512_set1_ps((float) j);
    /* x just below 1 and a small y keep every value normal: denormals would stall the pipes */
    const __m512 x = _mm512_set1_ps(0.999999f), y = _mm512_set1_ps(1e-6f);
    for (int64_t i = 0; i < iters; i++)
        for (int j = 0; j < ACC; j++) acc[j] = _mm512_fmadd_ps(acc[j], x, y);
    __m512 s = acc[0];
    for (int j = 1; j < ACC; j++) s = _mm512_add_ps(s, acc[j]);
    *sink += _mm512_reduce_add_ps(s);
    return 2.0 * 16 * ACC * (double) iters;
}

/* vdpbf16ps: 16 lanes, each adds two bf16 products in fp32, so 64 flops an instruction. */
double sipu_probe_dot_bf16_avx512(int64_t iters, float *sink) {
    __m512 acc[ACC];
    for (int j = 0; j < ACC; j++) acc[j] = _mm512_set1_ps((float) j);
    const __m512bh a = (__m512bh) _mm512_set1_epi16(0x3F00), b = (__m512bh) _mm512_set1_epi16(0x3580); /* 0.5, ~1e-6 */
    for (int64_t i = 0; i < iters; i++)
        for (int j = 0; j < ACC; j++) acc[j] = _mm512_dpbf16_ps(acc[j], a, b);
    __m512 s = acc[0];
    for (int j = 1; j < ACC; j++) s = _mm512_add_ps(s, acc[j]);
    *sink += _mm512_reduce_add_ps(s);
    return 4.0 * 16 * ACC * (double) iters;
}

void sipu_probe_triad_avx512(float *a, const float *b, const float *c, int64_t n, float s) {
    const __m512 vs = _mm512_set1_ps(s);
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) _mm512_storeu_ps(a + i, _mm512_fmadd_ps(vs, _mm512_loadu_ps(c + i), _mm512_loadu_ps(b + i)));
    for (; i < n; i++) a[i] = b[i] + s * c[i];
}

/* AMX tile configuration, palette 1: eight 16 x 64-byte tiles. */
typedef struct {
    uint8_t palette, start_row, reserved[14];
    uint16_t colsb[16];
    uint8_t rows[16];
} __attribute__((packed)) amx_config;

/*
 * AMX-BF16 (the tiles libtorch's oneDNN uses for bf16 GEMM where it can): four accumulator tiles fed by
 * two A and two B tiles, so four tdpbf16ps in flight, each 16 x 16 x 32 products. Only called after
 * probe.c has checked cpuid and got the kernel's permission for tile data.
 */
__attribute__((target("amx-tile,amx-bf16")))
double sipu_probe_amx_bf16_tiles(int64_t iters, float *sink) {
    amx_config cfg = {0};
    cfg.palette = 1;
    for (int i = 0; i < 8; i++) {
        cfg.colsb[i] = 64;
        cfg.rows[i] = 16;
    }
    uint16_t ab[16 * 32];
    float c[16 * 16];
    for (int i = 0; i < 16 * 32; i++) ab[i] = 0x3580; /* ~1e-6 */
    _tile_loadconfig(&cfg);
    _tile_zero(0);
    _tile_zero(1);
    _tile_zero(2);
    _tile_zero(3);
    _tile_loadd(4, ab, 64);
    _tile_loadd(5, ab, 64);
    _tile_loadd(6, ab, 64);
    _tile_loadd(7, ab, 64);
    for (int64_t i = 0; i < iters; i++) {
        _tile_dpbf16ps(0, 4, 6);
        _tile_dpbf16ps(1, 4, 7);
        _tile_dpbf16ps(2, 5, 6);
        _tile_dpbf16ps(3, 5, 7);
    }
    _tile_stored(0, c, 64);
    *sink += c[0];
    _tile_stored(3, c, 64);
    *sink += c[255];
    _tile_release();
    return 4.0 * 2 * 16 * 16 * 32 * (double) iters;
}
