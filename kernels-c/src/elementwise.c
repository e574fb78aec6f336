/* fill, arange, copy and the arithmetic ops, each an inner loop over the iteration core. */
#include "convert.h"
#include "iter.h"

#include <math.h>

/* ---- fill ------------------------------------------------------------------------------------- */

typedef struct { char value[8]; int size; } fill_ctx;

static void fill_loop(int64_t n, char *const *p, const int64_t *s, void *vctx) {
    const fill_ctx *c = vctx;
    for (int64_t i = 0; i < n; i++) memcpy(p[0] + i * s[0], c->value, (size_t) c->size);
}

SIPU_API sipu_status sipu_fill(const sipu_tensor *out, double fvalue, int64_t ivalue) {
    sipu_status st = sipu_check(out, "sipu_fill", "out");
    if (st) return st;
    fill_ctx c = {.size = sipu_itemsize(out->dtype)};
    if (sipu_is_int(out->dtype)) store_i64(c.value, out->dtype, ivalue);
    else store_f64(c.value, out->dtype, fvalue);
    const sipu_tensor *ops[] = {out};
    sipu_iter_run(1, ops, fill_loop, &c);
    return SIPU_OK;
}

SIPU_API sipu_status sipu_arange(const sipu_tensor *out, double start, double step, int64_t istart, int64_t istep) {
    sipu_status st = sipu_check(out, "sipu_arange", "out");
    if (st) return st;
    if (out->ndim != 1) return sipu_fail(SIPU_ERR_INVALID_ARGUMENT, "sipu_arange: out must be 1-D, has %d dimensions", out->ndim);
    int64_t n = out->sizes[0], es = out->strides[0] * sipu_itemsize(out->dtype);
    char *base = out->data;
    if (sipu_is_int(out->dtype)) {
        for (int64_t i = 0; i < n; i++) store_i64(base + i * es, out->dtype, (int64_t) ((uint64_t) istart + (uint64_t) i * (uint64_t) istep));
    } else {
        for (int64_t i = 0; i < n; i++) store_f64(base + i * es, out->dtype, start + (double) i * step);
    }
    return SIPU_OK;
}

/* ---- copy ------------------------------------------------------------------------------------- */

typedef struct { int32_t dst, src; } copy_ctx;

static void copy_loop(int64_t n, char *const *p, const int64_t *s, void *vctx) {
    const copy_ctx *c = vctx;
    int item = sipu_itemsize(c->dst);
    const bool f_dst = c->dst == SIPU_F32 || c->dst == SIPU_F16 || c->dst == SIPU_BF16;
    const bool f_src = c->src == SIPU_F32 || c->src == SIPU_F16 || c->src == SIPU_BF16;
    if (c->dst != c->src && f_dst && f_src && s[0] == item && s[1] == sipu_itemsize(c->src)) {
        sipu_vt()->cast_float(n, c->src, p[1], c->dst, p[0]);
    } else if (c->dst == c->src) {
        if (s[0] == item && s[1] == item) memmove(p[0], p[1], (size_t) (n * item));
        else for (int64_t i = 0; i < n; i++) memcpy(p[0] + i * s[0], p[1] + i * s[1], (size_t) item);
    } else if (c->dst == SIPU_F32 && c->src == SIPU_BF16) {
        for (int64_t i = 0; i < n; i++) { uint16_t h; memcpy(&h, p[1] + i * s[1], 2); float f = bf16_to_f32(h); memcpy(p[0] + i * s[0], &f, 4); }
    } else if (c->dst == SIPU_BF16 && c->src == SIPU_F32) {
        for (int64_t i = 0; i < n; i++) { float f; memcpy(&f, p[1] + i * s[1], 4); uint16_t h = f32_to_bf16(f); memcpy(p[0] + i * s[0], &h, 2); }
    } else if (sipu_is_float(c->dst) || sipu_is_float(c->src)) {
        for (int64_t i = 0; i < n; i++) store_f64(p[0] + i * s[0], c->dst, load_f64(p[1] + i * s[1], c->src));
    } else {
        for (int64_t i = 0; i < n; i++) store_i64(p[0] + i * s[0], c->dst, load_i64(p[1] + i * s[1], c->src));
    }
}

SIPU_API sipu_status sipu_copy(const sipu_tensor *dst, const sipu_tensor *src) {
    sipu_status st;
    if ((st = sipu_check(dst, "sipu_copy", "dst")) || (st = sipu_check(src, "sipu_copy", "src"))
        || (st = sipu_check_same_shape(src, dst, "sipu_copy", "src")))
        return st;
    copy_ctx c = {dst->dtype, src->dtype};
    const sipu_tensor *ops[] = {dst, src};
    sipu_iter_run(2, ops, copy_loop, &c);
    return SIPU_OK;
}

/* ---- binary ----------------------------------------------------------------------------------- */

typedef struct {
    int op;
    int32_t to, ta, tb, common;
    double alpha;
    bool scalar_b;
    double bscalar;
} binary_ctx;

static inline bool is_compare(int op) { return op >= SIPU_BINARY_EQ && op <= SIPU_BINARY_GE; }

static inline bool cmp(int op, double a, double b) {
    switch (op) {
    case SIPU_BINARY_EQ: return a == b;
    case SIPU_BINARY_LT: return a < b;
    case SIPU_BINARY_LE: return a <= b;
    case SIPU_BINARY_GT: return a > b;
    default: return a >= b;
    }
}

static inline bool cmp_i(int op, int64_t a, int64_t b) {
    switch (op) {
    case SIPU_BINARY_EQ: return a == b;
    case SIPU_BINARY_LT: return a < b;
    case SIPU_BINARY_LE: return a <= b;
    case SIPU_BINARY_GT: return a > b;
    default: return a >= b;
    }
}

static inline double bin_f64(int op, double a, double b, double alpha) {
    switch (op) {
    case SIPU_BINARY_ADD: return a + alpha * b;
    case SIPU_BINARY_SUB: return a - alpha * b;
    case SIPU_BINARY_RSUB: return b - alpha * a;
    case SIPU_BINARY_MUL: return a * b;
    case SIPU_BINARY_DIV: return a / b;
    case SIPU_BINARY_FLOOR_DIVIDE: {
        /* Python's floor division as PyTorch's div_floor_floating computes it. */
        if (b == 0) return a / b;
        double mod = fmod(a, b), div = (a - mod) / b;
        if (mod != 0 && (b < 0) != (mod < 0)) div -= 1;
        if (div == 0) return copysign(0.0, a / b);
        double fl = floor(div);
        return div - fl > 0.5 ? fl + 1 : fl;
    }
    default: return pow(a, b);
    }
}

static inline float bin_f32(int op, float a, float b, float alpha) {
    switch (op) {
    case SIPU_BINARY_ADD: return alpha == 1.0f ? a + b : a + alpha * b;
    case SIPU_BINARY_SUB: return alpha == 1.0f ? a - b : a - alpha * b;
    case SIPU_BINARY_RSUB: return alpha == 1.0f ? b - a : b - alpha * a;
    case SIPU_BINARY_MUL: return a * b;
    case SIPU_BINARY_DIV: return a / b;
    case SIPU_BINARY_FLOOR_DIVIDE: return (float) bin_f64(op, a, b, 1);
    default: return powf(a, b);
    }
}

static inline int64_t ipow(int64_t base, int64_t exp) {
    uint64_t r = 1, b = (uint64_t) base;
    while (exp > 0) {
        if (exp & 1) r *= b;
        b *= b;
        exp >>= 1;
    }
    return (int64_t) r;
}

/* Integer arithmetic wraps (done unsigned to stay defined). */
static inline int64_t bin_i64(int op, int64_t a, int64_t b, int64_t alpha) {
    uint64_t ua = (uint64_t) a, ub = (uint64_t) b, ual = (uint64_t) alpha;
    switch (op) {
    case SIPU_BINARY_ADD: return (int64_t) (ua + ual * ub);
    case SIPU_BINARY_SUB: return (int64_t) (ua - ual * ub);
    case SIPU_BINARY_RSUB: return (int64_t) (ub - ual * ua);
    case SIPU_BINARY_MUL: return (int64_t) (ua * ub);
    case SIPU_BINARY_FLOOR_DIVIDE: {
        if (a == INT64_MIN && b == -1) return INT64_MIN;
        int64_t q = a / b;
        return (a % b != 0 && ((a < 0) != (b < 0))) ? q - 1 : q;
    }
    case SIPU_BINARY_POW: return ipow(a, b);
    case SIPU_BINARY_BITWISE_AND: return a & b;
    default: return a | b;
    }
}

/* A value converted to the common dtype, as PyTorch converts operands before the op. */
static inline float to_common_f32(int32_t common, float v) {
    switch (common) {
    case SIPU_BF16: return bf16_to_f32(f32_to_bf16(v));
    case SIPU_F16: return f16_to_f32(f32_to_f16(v));
    default: return v;
    }
}

static inline int64_t to_common_i64(int32_t common, int64_t v) {
    switch (common) {
    case SIPU_I32: return (int32_t) (uint32_t) (uint64_t) v;
    case SIPU_I16: return (int16_t) (uint16_t) (uint64_t) v;
    case SIPU_I8: return (int8_t) (uint8_t) (uint64_t) v;
    case SIPU_U8: return (uint8_t) (uint64_t) v;
    case SIPU_BOOL: return v != 0;
    default: return v;
    }
}

static void binary_loop(int64_t n, char *const *p, const int64_t *s, void *vctx) {
    const binary_ctx *c = vctx;
    if (c->to == SIPU_F32 && c->ta == SIPU_F32 && !c->scalar_b && c->tb == SIPU_F32 && c->op <= SIPU_BINARY_DIV
        && s[0] == 4 && s[1] == 4 && s[2] == 4) {
        sipu_vt()->binary_f32(c->op, n, (const float *) p[1], (const float *) p[2], (float *) p[0], (float) c->alpha);
        return;
    }
    for (int64_t i = 0; i < n; i++) {
        char *o = p[0] + i * s[0];
        const char *a = p[1] + i * s[1], *bp = p[2] + i * s[2];
        if (c->common == SIPU_F64) {
            double x = load_f64(a, c->ta), y = c->scalar_b ? c->bscalar : load_f64(bp, c->tb);
            if (is_compare(c->op)) *o = (char) cmp(c->op, x, y);
            else store_f64(o, c->to, bin_f64(c->op, x, y, c->alpha));
        } else if (sipu_is_float(c->common)) {
            float x = to_common_f32(c->common, load_f32(a, c->ta));
            float y = to_common_f32(c->common, c->scalar_b ? (float) c->bscalar : load_f32(bp, c->tb));
            if (is_compare(c->op)) *o = (char) cmp(c->op, x, y);
            else store_f32(o, c->to, bin_f32(c->op, x, y, (float) c->alpha));
        } else {
            int64_t x = to_common_i64(c->common, load_i64(a, c->ta));
            int64_t y = to_common_i64(c->common, c->scalar_b ? f64_to_i64(c->bscalar) : load_i64(bp, c->tb));
            if (is_compare(c->op)) *o = (char) cmp_i(c->op, x, y);
            else if (c->common == SIPU_BOOL && c->op == SIPU_BINARY_ADD) *o = (char) (x || (y && c->alpha != 0));
            else if (c->common == SIPU_BOOL && c->op == SIPU_BINARY_MUL) *o = (char) (x && y);
            else store_i64(o, c->to, bin_i64(c->op, x, y, f64_to_i64(c->alpha)));
        }
    }
}

/* Integer floor division by zero and negative integer powers are errors, found before any store. */
typedef struct { int32_t dtype; bool zero, negative; } scan_ctx;

static void scan_loop(int64_t n, char *const *p, const int64_t *s, void *vctx) {
    scan_ctx *c = vctx;
    for (int64_t i = 0; i < n; i++) {
        int64_t v = load_i64(p[0] + i * s[0], c->dtype);
        if (v == 0) c->zero = true;
        if (v < 0) c->negative = true;
    }
}

SIPU_API sipu_status sipu_binary(int32_t op, const sipu_tensor *out, const sipu_tensor *a, const sipu_tensor *b,
                                 double bscalar, double alpha, int32_t common) {
    sipu_status st;
    if (op < SIPU_BINARY_ADD || op > SIPU_BINARY_RSUB) return sipu_fail(SIPU_ERR_INVALID_ARGUMENT, "sipu_binary: unknown op %d", op);
    if (!sipu_itemsize(common)) return sipu_fail(SIPU_ERR_UNSUPPORTED_DTYPE, "sipu_binary: unknown common dtype %d", common);
    if ((st = sipu_check(out, "sipu_binary", "out")) || (st = sipu_check(a, "sipu_binary", "a"))
        || (st = sipu_check_same_shape(a, out, "sipu_binary", "a")))
        return st;
    if (b && ((st = sipu_check(b, "sipu_binary", "b")) || (st = sipu_check_same_shape(b, out, "sipu_binary", "b")))) return st;
    bool flt = sipu_is_float(common);
    if (is_compare(op) && out->dtype != SIPU_BOOL) return sipu_fail(SIPU_ERR_UNSUPPORTED_DTYPE, "sipu_binary: comparisons store bool");
    if (op == SIPU_BINARY_DIV && !flt) return sipu_fail(SIPU_ERR_UNSUPPORTED_DTYPE, "sipu_binary: true division in %s", sipu_dtype_name(common));
    if ((op == SIPU_BINARY_BITWISE_AND || op == SIPU_BINARY_BITWISE_OR) && flt)
        return sipu_fail(SIPU_ERR_UNSUPPORTED_DTYPE, "sipu_binary: bitwise ops on %s", sipu_dtype_name(common));
    if (common == SIPU_BOOL && (op == SIPU_BINARY_SUB || op == SIPU_BINARY_RSUB || op == SIPU_BINARY_FLOOR_DIVIDE || op == SIPU_BINARY_POW))
        return sipu_fail(SIPU_ERR_UNSUPPORTED_DTYPE, "sipu_binary: op %d on bool", op);
    if (!flt && (op == SIPU_BINARY_FLOOR_DIVIDE || op == SIPU_BINARY_POW)) {
        scan_ctx sc = {b ? b->dtype : SIPU_F64, false, false};
        if (b) {
            const sipu_tensor *ops1[] = {b};
            sipu_iter_run(1, ops1, scan_loop, &sc);
        } else {
            sc.zero = bscalar == 0;
            sc.negative = bscalar < 0;
        }
        if (op == SIPU_BINARY_FLOOR_DIVIDE && sc.zero) return sipu_fail(SIPU_ERR_INVALID_ARGUMENT, "sipu_binary: integer division by zero");
        if (op == SIPU_BINARY_POW && sc.negative) return sipu_fail(SIPU_ERR_INVALID_ARGUMENT, "sipu_binary: integers to negative integer powers are not allowed");
    }
    binary_ctx c = {op, out->dtype, a->dtype, b ? b->dtype : SIPU_F64, common, alpha, b == NULL, bscalar};
    const sipu_tensor *ops[] = {out, a, b ? b : a};
    sipu_iter_run(3, ops, binary_loop, &c);
    return SIPU_OK;
}

/* ---- unary ------------------------------------------------------------------------------------ */

typedef struct { int op; int32_t to, ta; } unary_ctx;

static inline double un_f64(int op, double x) {
    switch (op) {
    case SIPU_UNARY_NEG: return -x;
    case SIPU_UNARY_SIGMOID: return 1.0 / (1.0 + exp(-x));
    case SIPU_UNARY_SILU: return x / (1.0 + exp(-x));
    case SIPU_UNARY_COS: return cos(x);
    case SIPU_UNARY_SIN: return sin(x);
    case SIPU_UNARY_RSQRT: return 1.0 / sqrt(x);
    default: return 1.0 / x;
    }
}

static inline float un_f32(int op, float x) {
    switch (op) {
    case SIPU_UNARY_NEG: return -x;
    case SIPU_UNARY_SIGMOID: return 1.0f / (1.0f + expf(-x));
    case SIPU_UNARY_SILU: return x / (1.0f + expf(-x));
    case SIPU_UNARY_COS: return cosf(x);
    case SIPU_UNARY_SIN: return sinf(x);
    case SIPU_UNARY_RSQRT: return 1.0f / sqrtf(x);
    default: return 1.0f / x;
    }
}

static void unary_loop(int64_t n, char *const *p, const int64_t *s, void *vctx) {
    const unary_ctx *c = vctx;
    if (c->to == SIPU_F32 && c->ta == SIPU_F32 && c->op <= SIPU_UNARY_SILU && s[0] == 4 && s[1] == 4) {
        sipu_vt()->unary_f32(c->op, n, (const float *) p[1], (float *) p[0]);
        return;
    }
    for (int64_t i = 0; i < n; i++) {
        char *o = p[0] + i * s[0];
        const char *a = p[1] + i * s[1];
        if (c->to == SIPU_F64) store_f64(o, c->to, un_f64(c->op, load_f64(a, c->ta)));
        else if (sipu_is_float(c->to)) store_f32(o, c->to, un_f32(c->op, load_f32(a, c->ta)));
        else if (c->op == SIPU_UNARY_BITWISE_NOT) {
            int64_t v = load_i64(a, c->ta);
            store_i64(o, c->to, c->to == SIPU_BOOL ? !v : ~v);
        } else store_i64(o, c->to, (int64_t) (0u - (uint64_t) load_i64(a, c->ta)));
    }
}

SIPU_API sipu_status sipu_unary(int32_t op, const sipu_tensor *out, const sipu_tensor *in) {
    sipu_status st;
    if (op < SIPU_UNARY_NEG || op > SIPU_UNARY_BITWISE_NOT) return sipu_fail(SIPU_ERR_INVALID_ARGUMENT, "sipu_unary: unknown op %d", op);
    if ((st = sipu_check(out, "sipu_unary", "out")) || (st = sipu_check(in, "sipu_unary", "in"))
        || (st = sipu_check_same_shape(in, out, "sipu_unary", "in")))
        return st;
    if (op == SIPU_UNARY_BITWISE_NOT ? sipu_is_float(out->dtype) : (op != SIPU_UNARY_NEG && !sipu_is_float(out->dtype)))
        return sipu_fail(SIPU_ERR_UNSUPPORTED_DTYPE, "sipu_unary: op %d does not produce %s", op, sipu_dtype_name(out->dtype));
    if (op == SIPU_UNARY_NEG && out->dtype == SIPU_BOOL)
        return sipu_fail(SIPU_ERR_UNSUPPORTED_DTYPE, "sipu_unary: negation of bool");
    unary_ctx c = {op, out->dtype, in->dtype};
    const sipu_tensor *ops[] = {out, in};
    sipu_iter_run(2, ops, unary_loop, &c);
    return SIPU_OK;
}

/* ---- where, masked_fill, clamp ----------------------------------------------------------------- */

static void where_loop(int64_t n, char *const *p, const int64_t *s, void *vctx) {
    const int32_t *t = vctx;   /* out, cond, a, b dtypes */
    int item = sipu_itemsize(t[0]);
    bool floating = sipu_is_float(t[0]);
    for (int64_t i = 0; i < n; i++) {
        const char *src = load_i64(p[1] + i * s[1], t[1]) ? p[2] + i * s[2] : p[3] + i * s[3];
        int32_t ts = src == p[2] + i * s[2] ? t[2] : t[3];
        char *o = p[0] + i * s[0];
        if (ts == t[0]) memcpy(o, src, (size_t) item);
        else if (floating) store_f64(o, t[0], load_f64(src, ts));
        else store_i64(o, t[0], load_i64(src, ts));
    }
}

SIPU_API sipu_status sipu_where(const sipu_tensor *out, const sipu_tensor *cond, const sipu_tensor *a, const sipu_tensor *b) {
    sipu_status st;
    const char *fn = "sipu_where";
    if ((st = sipu_check(out, fn, "out")) || (st = sipu_check(cond, fn, "condition")) || (st = sipu_check(a, fn, "self"))
        || (st = sipu_check(b, fn, "other")) || (st = sipu_check_same_shape(cond, out, fn, "condition"))
        || (st = sipu_check_same_shape(a, out, fn, "self")) || (st = sipu_check_same_shape(b, out, fn, "other")))
        return st;
    int32_t t[4] = {out->dtype, cond->dtype, a->dtype, b->dtype};
    const sipu_tensor *ops[] = {out, cond, a, b};
    sipu_iter_run(4, ops, where_loop, t);
    return SIPU_OK;
}

typedef struct { int32_t mask; char value[8]; int size; } mask_ctx;

static void mask_loop(int64_t n, char *const *p, const int64_t *s, void *vctx) {
    const mask_ctx *c = vctx;
    for (int64_t i = 0; i < n; i++)
        if (load_i64(p[1] + i * s[1], c->mask)) memcpy(p[0] + i * s[0], c->value, (size_t) c->size);
}

SIPU_API sipu_status sipu_masked_fill(const sipu_tensor *self, const sipu_tensor *mask, double fvalue, int64_t ivalue) {
    sipu_status st;
    if ((st = sipu_check(self, "sipu_masked_fill", "self")) || (st = sipu_check(mask, "sipu_masked_fill", "mask"))
        || (st = sipu_check_same_shape(mask, self, "sipu_masked_fill", "mask")))
        return st;
    mask_ctx c = {.mask = mask->dtype, .size = sipu_itemsize(self->dtype)};
    if (sipu_is_int(self->dtype)) store_i64(c.value, self->dtype, ivalue);
    else store_f64(c.value, self->dtype, fvalue);
    const sipu_tensor *ops[] = {self, mask};
    sipu_iter_run(2, ops, mask_loop, &c);
    return SIPU_OK;
}

typedef struct { int32_t to, ta; bool has_lo, has_hi; double lo, hi; } clamp_ctx;

static void clamp_loop(int64_t n, char *const *p, const int64_t *s, void *vctx) {
    const clamp_ctx *c = vctx;
    for (int64_t i = 0; i < n; i++) {
        char *o = p[0] + i * s[0];
        const char *a = p[1] + i * s[1];
        if (sipu_is_float(c->to)) {
            double x = c->to == SIPU_F64 ? load_f64(a, c->ta) : (double) to_common_f32(c->to, load_f32(a, c->ta));
            if (!isnan(x)) {
                if (c->has_lo && (x < c->lo || isnan(c->lo))) x = c->lo;
                if (c->has_hi && (x > c->hi || isnan(c->hi))) x = c->hi;
            }
            store_f64(o, c->to, x);
        } else {
            int64_t x = load_i64(a, c->ta);
            if (c->has_lo && x < (int64_t) c->lo) x = (int64_t) c->lo;
            if (c->has_hi && x > (int64_t) c->hi) x = (int64_t) c->hi;
            store_i64(o, c->to, x);
        }
    }
}

SIPU_API sipu_status sipu_clamp(const sipu_tensor *out, const sipu_tensor *in, int32_t has_min, double lo, int32_t has_max, double hi) {
    sipu_status st;
    if ((st = sipu_check(out, "sipu_clamp", "out")) || (st = sipu_check(in, "sipu_clamp", "in"))
        || (st = sipu_check_same_shape(in, out, "sipu_clamp", "in")))
        return st;
    if (out->dtype == SIPU_BOOL) return sipu_fail(SIPU_ERR_UNSUPPORTED_DTYPE, "sipu_clamp: bool");
    clamp_ctx c = {out->dtype, in->dtype, has_min != 0, has_max != 0, lo, hi};
    if (sipu_is_float(out->dtype) && out->dtype != SIPU_F64) {
        c.lo = to_common_f32(out->dtype, (float) lo);
        c.hi = to_common_f32(out->dtype, (float) hi);
    }
    const sipu_tensor *ops[] = {out, in};
    sipu_iter_run(2, ops, clamp_loop, &c);
    return SIPU_OK;
}
