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
    if (c->dst == c->src) {
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
    int32_t to, ta, tb;
    double alpha;
    bool scalar_b;
    double bscalar;
} binary_ctx;

static inline double bin_f64(int op, double a, double b, double alpha) {
    switch (op) {
    case SIPU_BINARY_ADD: return a + alpha * b;
    case SIPU_BINARY_SUB: return a - alpha * b;
    case SIPU_BINARY_MUL: return a * b;
    default: return a / b;
    }
}

static inline float bin_f32(int op, float a, float b, float alpha) {
    switch (op) {
    case SIPU_BINARY_ADD: return alpha == 1.0f ? a + b : a + alpha * b;
    case SIPU_BINARY_SUB: return alpha == 1.0f ? a - b : a - alpha * b;
    case SIPU_BINARY_MUL: return a * b;
    default: return a / b;
    }
}

/* Integer arithmetic wraps (done unsigned to stay defined). */
static inline int64_t bin_i64(int op, int64_t a, int64_t b, int64_t alpha) {
    uint64_t ua = (uint64_t) a, ub = (uint64_t) b, ual = (uint64_t) alpha;
    switch (op) {
    case SIPU_BINARY_ADD: return (int64_t) (ua + ual * ub);
    case SIPU_BINARY_SUB: return (int64_t) (ua - ual * ub);
    default: return (int64_t) (ua * ub);
    }
}

static void binary_loop(int64_t n, char *const *p, const int64_t *s, void *vctx) {
    const binary_ctx *c = vctx;
    if (c->to == SIPU_F32 && c->ta == SIPU_F32 && !c->scalar_b && c->tb == SIPU_F32 && s[0] == 4 && s[1] == 4 && s[2] == 4) {
        sipu_vt()->binary_f32(c->op, n, (const float *) p[1], (const float *) p[2], (float *) p[0], (float) c->alpha);
        return;
    }
    for (int64_t i = 0; i < n; i++) {
        char *o = p[0] + i * s[0];
        const char *a = p[1] + i * s[1];
        if (c->to == SIPU_F64) {
            double b = c->scalar_b ? c->bscalar : load_f64(p[2] + i * s[2], c->tb);
            store_f64(o, c->to, bin_f64(c->op, load_f64(a, c->ta), b, c->alpha));
        } else if (sipu_is_float(c->to)) {
            float b = c->scalar_b ? (float) c->bscalar : load_f32(p[2] + i * s[2], c->tb);
            store_f32(o, c->to, bin_f32(c->op, load_f32(a, c->ta), b, (float) c->alpha));
        } else if (c->to == SIPU_BOOL) {
            bool x = load_i64(a, c->ta) != 0;
            bool y = c->scalar_b ? c->bscalar != 0 : load_i64(p[2] + i * s[2], c->tb) != 0;
            *o = (char) (c->op == SIPU_BINARY_MUL ? (x && y) : (x || (y && c->alpha != 0)));
        } else {
            int64_t b = c->scalar_b ? f64_to_i64(c->bscalar) : load_i64(p[2] + i * s[2], c->tb);
            store_i64(o, c->to, bin_i64(c->op, load_i64(a, c->ta), b, f64_to_i64(c->alpha)));
        }
    }
}

SIPU_API sipu_status sipu_binary(int32_t op, const sipu_tensor *out, const sipu_tensor *a, const sipu_tensor *b,
                                 double bscalar, double alpha) {
    sipu_status st;
    if (op < SIPU_BINARY_ADD || op > SIPU_BINARY_DIV) return sipu_fail(SIPU_ERR_INVALID_ARGUMENT, "sipu_binary: unknown op %d", op);
    if ((st = sipu_check(out, "sipu_binary", "out")) || (st = sipu_check(a, "sipu_binary", "a"))
        || (st = sipu_check_same_shape(a, out, "sipu_binary", "a")))
        return st;
    if (b && ((st = sipu_check(b, "sipu_binary", "b")) || (st = sipu_check_same_shape(b, out, "sipu_binary", "b")))) return st;
    if (op == SIPU_BINARY_DIV && !sipu_is_float(out->dtype))
        return sipu_fail(SIPU_ERR_UNSUPPORTED_DTYPE, "sipu_binary: true division into %s", sipu_dtype_name(out->dtype));
    if (out->dtype == SIPU_BOOL && op == SIPU_BINARY_SUB)
        return sipu_fail(SIPU_ERR_UNSUPPORTED_DTYPE, "sipu_binary: subtraction of bool tensors");
    binary_ctx c = {op, out->dtype, a->dtype, b ? b->dtype : SIPU_F64, alpha, b == NULL, bscalar};
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
    default: return x / (1.0 + exp(-x));
    }
}

static inline float un_f32(int op, float x) {
    switch (op) {
    case SIPU_UNARY_NEG: return -x;
    case SIPU_UNARY_SIGMOID: return 1.0f / (1.0f + expf(-x));
    default: return x / (1.0f + expf(-x));
    }
}

static void unary_loop(int64_t n, char *const *p, const int64_t *s, void *vctx) {
    const unary_ctx *c = vctx;
    if (c->to == SIPU_F32 && c->ta == SIPU_F32 && s[0] == 4 && s[1] == 4) {
        sipu_vt()->unary_f32(c->op, n, (const float *) p[1], (float *) p[0]);
        return;
    }
    for (int64_t i = 0; i < n; i++) {
        char *o = p[0] + i * s[0];
        const char *a = p[1] + i * s[1];
        if (c->to == SIPU_F64) store_f64(o, c->to, un_f64(c->op, load_f64(a, c->ta)));
        else if (sipu_is_float(c->to)) store_f32(o, c->to, un_f32(c->op, load_f32(a, c->ta)));
        else store_i64(o, c->to, (int64_t) (0u - (uint64_t) load_i64(a, c->ta)));
    }
}

SIPU_API sipu_status sipu_unary(int32_t op, const sipu_tensor *out, const sipu_tensor *in) {
    sipu_status st;
    if (op < SIPU_UNARY_NEG || op > SIPU_UNARY_SILU) return sipu_fail(SIPU_ERR_INVALID_ARGUMENT, "sipu_unary: unknown op %d", op);
    if ((st = sipu_check(out, "sipu_unary", "out")) || (st = sipu_check(in, "sipu_unary", "in"))
        || (st = sipu_check_same_shape(in, out, "sipu_unary", "in")))
        return st;
    if (op != SIPU_UNARY_NEG && !sipu_is_float(out->dtype))
        return sipu_fail(SIPU_ERR_UNSUPPORTED_DTYPE, "sipu_unary: op %d needs a floating output, got %s", op, sipu_dtype_name(out->dtype));
    if (op == SIPU_UNARY_NEG && out->dtype == SIPU_BOOL)
        return sipu_fail(SIPU_ERR_UNSUPPORTED_DTYPE, "sipu_unary: negation of bool");
    unary_ctx c = {op, out->dtype, in->dtype};
    const sipu_tensor *ops[] = {out, in};
    sipu_iter_run(2, ops, unary_loop, &c);
    return SIPU_OK;
}
