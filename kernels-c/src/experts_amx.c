/*
 * The second GEMM of the bf16 experts on AMX (compiled with the AMX flags, reached only when
 * sipu_amx()): the roles of gemm_amx.c's decode tiles, weight rows as the 16-row A tile and a^T as
 * the B tile, with the three bf16 parts of h2 (experts.c) accumulated into the same fp32 tile:
 * per 32 elements of K the hi, mid and lo products in turn, the K-concatenation [hi | mid | lo] x
 * [W2; W2; W2] in an interleaved order. Two blocks of 16 weight rows share each load of the three
 * parts' tiles, so the weights stream once and the parts are read half as often.
 */
#include "experts_amx.h"

#include <immintrin.h>

#define CHUNK 128 /* K elements per step of the weight rows (four tile loads each) */

/* rows [0, rows) of w, K elements [k0, k0 + CHUNK), zero past rows and K, as a [16][CHUNK] bf16 block */
static void copy_chunk(const uint16_t *w, int64_t ldw, int64_t rows, int64_t k0, int64_t k, uint16_t *buf) {
    for (int r = 0; r < 16; r++)
        for (int e = 0; e < CHUNK; e += 32) {
            int64_t n = r < rows ? k - (k0 + e) : 0;
            __mmask32 m = n >= 32 ? (__mmask32) 0xFFFFFFFFu : n <= 0 ? 0 : (__mmask32) ((1u << n) - 1);
            _mm512_store_si512(buf + r * CHUNK + e, _mm512_maskz_loadu_epi16(m, w + r * ldw + k0 + e));
        }
}

/* where the tiles read chunk k0 of a 16-row block: in place when whole, else through buf */
static const char *chunk_src(const uint16_t *w, int64_t ldw, int64_t rows, int64_t k0, int64_t k, uint16_t *buf, int64_t *lds) {
    if (rows == 16 && k0 + CHUNK <= k) {
        *lds = ldw * 2;
        return (const char *) (w + k0);
    }
    copy_chunk(w, ldw, rows, k0, k, buf);
    *lds = CHUNK * 2;
    return (const char *) buf;
}

/* prefetch (to L2) chunk k0 of the 16 rows at next, the block after the ones being multiplied */
static void prefetch_chunk(const uint16_t *next, int64_t ldw, int64_t k0, int64_t k) {
    if (!next) return;
    for (int r = 0; r < 16; r++)
        for (int e = 0; e < CHUNK && k0 + e < k; e += 32) _mm_prefetch((const char *) (next + r * ldw + k0 + e), _MM_HINT_T1);
}

/*
 * The 16 x 16 fp32 accumulator, weight row r by column m, into c[m * ldc + r] for m < mc, r < rows:
 * each column gathered from the stored tile, whole aligned lines streamed past the caches (c is
 * written once and read back after the GEMM; read-for-ownership of its lines cost ~20 % of it).
 */
static void store_block(int tile, int64_t rows, int mc, float *c, int64_t ldc) {
    float acc[16 * 16] __attribute__((aligned(64)));
    if (tile == 0) _tile_stored(0, acc, 64);
    else _tile_stored(1, acc, 64);
    const __m512i col = _mm512_mullo_epi32(_mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0), _mm512_set1_epi32(16));
    const __mmask16 keep = (__mmask16) ((1u << rows) - 1);
    for (int m = 0; m < mc; m++) {
        __m512 v = _mm512_i32gather_ps(_mm512_add_epi32(col, _mm512_set1_epi32(m)), acc, 4);
        float *dst = c + m * ldc;
        if (rows == 16 && ((uintptr_t) dst & 63) == 0) _mm512_stream_ps(dst, v);
        else _mm512_mask_storeu_ps(dst, keep, v);
    }
}

/*
 * One or two blocks of 16 weight rows (rows0, rows1 of them; rows1 = 0: one block) at w, w + 16 ldw,
 * over all of K: tiles 0 and 1 accumulate, 2 and 3 hold the weights, 4-6 the three parts.
 */
static void split_blocks(int64_t rows0, int64_t rows1, int64_t k, int64_t kq, const uint32_t *at, const uint16_t *w, int64_t ldw,
                         const uint16_t *next, int mc, float *c, int64_t ldc) {
    uint16_t buf[2][16 * CHUNK] __attribute__((aligned(64)));
    const uint16_t *w1 = w + 16 * ldw;
    _tile_zero(0);
    _tile_zero(1);
    for (int64_t k0 = 0; k0 < k; k0 += CHUNK) {
        int64_t ld0, ld1 = 0;
        const char *s0 = chunk_src(w, ldw, rows0, k0, k, buf[0], &ld0), *s1 = rows1 ? chunk_src(w1, ldw, rows1, k0, k, buf[1], &ld1) : NULL;
        prefetch_chunk(next, ldw, k0, k);
        if (rows1) prefetch_chunk(next ? next + 16 * ldw : NULL, ldw, k0, k);
        const uint32_t *bt = at + (k0 / 2) * 16;
        for (int q = 0; q < CHUNK / 32; q++) {
            _tile_loadd(2, s0 + q * 64, ld0);
            if (s1) _tile_loadd(3, s1 + q * 64, ld1);
            _tile_loadd(4, bt + q * 16 * 16, 64);
            _tile_loadd(5, bt + kq * 16 + q * 16 * 16, 64);
            _tile_loadd(6, bt + 2 * kq * 16 + q * 16 * 16, 64);
            _tile_dpbf16ps(0, 2, 4);
            if (s1) _tile_dpbf16ps(1, 3, 4);
            _tile_dpbf16ps(0, 2, 5);
            if (s1) _tile_dpbf16ps(1, 3, 5);
            _tile_dpbf16ps(0, 2, 6);
            if (s1) _tile_dpbf16ps(1, 3, 6);
        }
    }
    store_block(0, rows0, mc, c, ldc);
    if (rows1) store_block(1, rows1, mc, c + 16, ldc);
}

void sipu_experts_amx_split(int64_t nn, int64_t k, const uint32_t *at, const uint16_t *w, int64_t ldw, int mc, float *c, int64_t ldc) {
    const int64_t kq = (k + CHUNK - 1) / CHUNK * CHUNK / 2;
    for (int64_t n0 = 0; n0 < nn; n0 += 32) {
        const int64_t rows0 = nn - n0 < 16 ? nn - n0 : 16, rest = nn - n0 - rows0, rows1 = rest < 16 ? (rest > 0 ? rest : 0) : 16;
        const uint16_t *next = n0 + 64 <= nn ? w + (n0 + 32) * ldw : NULL;
        split_blocks(rows0, rows1, k, kq, at, w + n0 * ldw, ldw, next, mc, c + n0, ldc);
    }
    _mm_sfence(); /* the streamed lines of c before the caller's barrier */
}
