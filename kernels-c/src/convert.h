/*
 * Element conversions bit-exact with PyTorch's c10 (BFloat16.h, Half.h, Float8_e4m3fn.h,
 * Float8_e5m2.h); float-to-integer casts as x86's cvtt instructions give them, without C's undefined
 * behaviour on NaN and out-of-range values.
 */
#ifndef SIPU_CONVERT_H
#define SIPU_CONVERT_H

#include <math.h>
#include <stdint.h>
#include <string.h>

#include "sipu_kernels.h"

static inline uint32_t f32_bits(float f) { uint32_t u; memcpy(&u, &f, 4); return u; }
static inline float f32_from(uint32_t u) { float f; memcpy(&f, &u, 4); return f; }

static inline float bf16_to_f32(uint16_t h) { return f32_from((uint32_t) h << 16); }

static inline uint16_t f32_to_bf16(float f) {
    if (isnan(f)) return 0x7FC0;
    uint32_t u = f32_bits(f);
    return (uint16_t) ((u + (((u >> 16) & 1) + 0x7FFF)) >> 16);
}

static inline float f16_to_f32(uint16_t h) {
    const uint32_t w = (uint32_t) h << 16;
    const uint32_t sign = w & 0x80000000u;
    const uint32_t two_w = w + w;
    const float normalized = f32_from((two_w >> 4) + (0xE0u << 23)) * 0x1.0p-112f;
    const float denormalized = f32_from((two_w >> 17) | (126u << 23)) - 0.5f;
    const uint32_t r = sign | (two_w < (1u << 27) ? f32_bits(denormalized) : f32_bits(normalized));
    return f32_from(r);
}

static inline uint16_t f32_to_f16(float f) {
    float base = (fabsf(f) * 0x1.0p+112f) * 0x1.0p-110f;
    const uint32_t w = f32_bits(f);
    const uint32_t shl1_w = w + w;
    const uint32_t sign = w & 0x80000000u;
    uint32_t bias = shl1_w & 0xFF000000u;
    if (bias < 0x71000000u) bias = 0x71000000u;
    base = f32_from((bias >> 1) + 0x07800000u) + base;
    const uint32_t bits = f32_bits(base);
    const uint32_t nonsign = ((bits >> 13) & 0x7C00u) + (bits & 0x0FFFu);
    return (uint16_t) ((sign >> 16) | (shl1_w > 0xFF000000u ? 0x7E00u : nonsign));
}

static inline float e4m3_to_f32(uint8_t v) {
    int exp = (v >> 3) & 0xF, man = v & 7;
    float mag;
    if (exp == 15 && man == 7) mag = NAN;
    else if (exp == 0) mag = (float) man * 0x1p-9f;
    else mag = f32_from((uint32_t) (exp + 120) << 23 | (uint32_t) man << 20); /* 2^(exp-7) * (1 + man/8), built exactly (no ldexpf call) */
    return (v & 0x80) ? -mag : mag;
}

/* PyTorch's .to(float8_e4m3fn): round to nearest even, not saturating: above 464 and inf give NaN. */
static inline uint8_t f32_to_e4m3(float f) {
    const uint32_t fp8_max = 1087u << 20, denorm_mask = 141u << 23;
    uint32_t bits = f32_bits(f);
    const uint32_t sign = bits & 0x80000000u;
    uint8_t r;
    bits ^= sign;
    if (bits >= fp8_max) {
        r = 0x7F;
    } else if (bits < (121u << 23)) {
        bits = f32_bits(f32_from(bits) + f32_from(denorm_mask));
        r = (uint8_t) (bits - denorm_mask);
    } else {
        uint32_t mant_odd = (bits >> 20) & 1;
        bits += ((uint32_t) (7 - 127) << 23) + 0x7FFFF;
        bits += mant_odd;
        r = (uint8_t) (bits >> 20);
    }
    return r | (uint8_t) (sign >> 24);
}

/* The saturating conversion of every vLLM/DeepSeek quantization kernel: clamp to +-448, then RNE. */
static inline uint8_t f32_to_e4m3_sat(float f) {
    if (isnan(f)) return 0x7F;
    return f32_to_e4m3(f > 448.0f ? 448.0f : f < -448.0f ? -448.0f : f);
}

/*
 * e4m3_to_f32(f32_to_e4m3_sat(v)) without the code in between: clamp to +-448, round to nearest even
 * at e4m3's step (2^-9 below 2^-6, else 3 mantissa bits); bit-identical on all 2^32 inputs
 * (checked once exhaustively; CTest samples them).
 */
static inline float e4m3_round_sat(float v) {
    if (v != v) return NAN;
    v = v > 448.0f ? 448.0f : v < -448.0f ? -448.0f : v;
    uint32_t bits = f32_bits(v), sign = bits & 0x80000000u;
    bits ^= sign;
    if (bits < (121u << 23)) bits = f32_bits((f32_from(bits) + 0x1p14f) - 0x1p14f);
    else bits = (bits + 0x7FFFFu + ((bits >> 20) & 1)) & ~0xFFFFFu;
    return f32_from(bits | sign);
}

static inline float e5m2_to_f32(uint8_t v) { return f16_to_f32((uint16_t) v << 8); }

static inline uint8_t f32_to_e5m2(float f) {
    const uint32_t fp32_inf = 255u << 23, fp8_max = 143u << 23, denorm_mask = 134u << 23;
    uint32_t bits = f32_bits(f);
    const uint32_t sign = bits & 0x80000000u;
    uint8_t r;
    bits ^= sign;
    if (bits >= fp8_max) {
        r = bits > fp32_inf ? 0x7F : 0x7C;
    } else if (bits < (113u << 23)) {
        bits = f32_bits(f32_from(bits) + f32_from(denorm_mask));
        r = (uint8_t) (bits - denorm_mask);
    } else {
        uint32_t mant_odd = (bits >> 21) & 1;
        bits += ((uint32_t) (15 - 127) << 23) + 0xFFFFF;
        bits += mant_odd;
        r = (uint8_t) (bits >> 21);
    }
    return r | (uint8_t) (sign >> 24);
}

static inline int64_t f64_to_i64(double d) {
    if (!(d > -0x1p63 && d < 0x1p63)) return INT64_MIN;
    return (int64_t) d;
}

static inline int32_t f64_to_i32(double d) {
    if (!(d > -2147483649.0 && d < 2147483648.0)) return INT32_MIN;
    return (int32_t) d;
}

/* ---- typed access by dtype code: the general (slow) path of every kernel ---------------------- */

static inline double load_f64(const char *p, int32_t t) {
    switch (t) {
    case SIPU_F64: { double v; memcpy(&v, p, 8); return v; }
    case SIPU_F32: { float v; memcpy(&v, p, 4); return v; }
    case SIPU_F16: { uint16_t v; memcpy(&v, p, 2); return f16_to_f32(v); }
    case SIPU_BF16: { uint16_t v; memcpy(&v, p, 2); return bf16_to_f32(v); }
    case SIPU_F8E4M3FN: return e4m3_to_f32((uint8_t) *p);
    case SIPU_F8E5M2: return e5m2_to_f32((uint8_t) *p);
    case SIPU_I64: { int64_t v; memcpy(&v, p, 8); return (double) v; }
    case SIPU_I32: { int32_t v; memcpy(&v, p, 4); return v; }
    case SIPU_I16: { int16_t v; memcpy(&v, p, 2); return v; }
    case SIPU_I8: return (int8_t) *p;
    case SIPU_U8: return (uint8_t) *p;
    default: return *p != 0;
    }
}

static inline int64_t load_i64(const char *p, int32_t t) {
    switch (t) {
    case SIPU_I64: { int64_t v; memcpy(&v, p, 8); return v; }
    case SIPU_I32: { int32_t v; memcpy(&v, p, 4); return v; }
    case SIPU_I16: { int16_t v; memcpy(&v, p, 2); return v; }
    case SIPU_I8: return (int8_t) *p;
    case SIPU_U8: return (uint8_t) *p;
    case SIPU_BOOL: return *p != 0;
    default: return f64_to_i64(load_f64(p, t));
    }
}

static inline float load_f32(const char *p, int32_t t) {
    switch (t) {
    case SIPU_F32: { float v; memcpy(&v, p, 4); return v; }
    case SIPU_BF16: { uint16_t v; memcpy(&v, p, 2); return bf16_to_f32(v); }
    case SIPU_F16: { uint16_t v; memcpy(&v, p, 2); return f16_to_f32(v); }
    case SIPU_I64: { int64_t v; memcpy(&v, p, 8); return (float) v; }
    default: return (float) load_f64(p, t);
    }
}

static inline void store_i64(char *p, int32_t t, int64_t v);

/* Doubles narrow to fp32 before 16- and 8-bit floats, as c10 converts. */
static inline void store_f64(char *p, int32_t t, double v) {
    switch (t) {
    case SIPU_F64: memcpy(p, &v, 8); return;
    case SIPU_F32: { float f = (float) v; memcpy(p, &f, 4); return; }
    case SIPU_F16: { uint16_t h = f32_to_f16((float) v); memcpy(p, &h, 2); return; }
    case SIPU_BF16: { uint16_t h = f32_to_bf16((float) v); memcpy(p, &h, 2); return; }
    case SIPU_F8E4M3FN: *p = (char) f32_to_e4m3((float) v); return;
    case SIPU_F8E5M2: *p = (char) f32_to_e5m2((float) v); return;
    case SIPU_I64: { int64_t i = f64_to_i64(v); memcpy(p, &i, 8); return; }
    case SIPU_I32: { int32_t i = f64_to_i32(v); memcpy(p, &i, 4); return; }
    case SIPU_I16: { int16_t i = (int16_t) f64_to_i32(v); memcpy(p, &i, 2); return; }
    case SIPU_I8: case SIPU_U8: *p = (char) (uint8_t) f64_to_i32(v); return;
    default: *p = (char) (v != 0 || isnan(v));
    }
}

static inline void store_f32(char *p, int32_t t, float v) {
    switch (t) {
    case SIPU_F32: memcpy(p, &v, 4); return;
    case SIPU_BF16: { uint16_t h = f32_to_bf16(v); memcpy(p, &h, 2); return; }
    case SIPU_F16: { uint16_t h = f32_to_f16(v); memcpy(p, &h, 2); return; }
    default: store_f64(p, t, v);
    }
}

/* Integers wrap when they narrow; floats round. */
static inline void store_i64(char *p, int32_t t, int64_t v) {
    switch (t) {
    case SIPU_I64: memcpy(p, &v, 8); return;
    case SIPU_I32: { int32_t i = (int32_t) (uint32_t) (uint64_t) v; memcpy(p, &i, 4); return; }
    case SIPU_I16: { int16_t i = (int16_t) (uint16_t) (uint64_t) v; memcpy(p, &i, 2); return; }
    case SIPU_I8: case SIPU_U8: *p = (char) (uint8_t) (uint64_t) v; return;
    case SIPU_BOOL: *p = (char) (v != 0); return;
    default: store_f64(p, t, (double) v);
    }
}

#endif
