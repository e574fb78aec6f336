/* Load-time setup: the SIMD path from cpuid (SIPU_SIMD may force a lower one), threads, errors. */
#include "internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <strings.h>
#if defined(__x86_64__) && defined(__linux__)
#include <cpuid.h>
#include <sys/syscall.h>
#include <unistd.h>
#endif
#ifdef _OPENMP
#include <omp.h>
#endif

static _Thread_local char last_error[512];
static int simd_level = -1;
static int num_threads = 0;
static bool amx_ok = false, amx_hw = false;

sipu_status sipu_fail(sipu_status code, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(last_error, sizeof last_error, fmt, ap);
    va_end(ap);
    return code;
}

SIPU_API const char *sipu_last_error(void) { return last_error; }

SIPU_API const char *sipu_version(void) { return "sipu_kernels 0.1.0"; }

static int detect_simd(void) {
    __builtin_cpu_init();
    int level = SIPU_SIMD_SCALAR;
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) level = SIPU_SIMD_AVX2;
    if (level == SIPU_SIMD_AVX2 && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw")
        && __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq")) {
        level = SIPU_SIMD_AVX512;
        if (__builtin_cpu_supports("avx512bf16")) level = SIPU_SIMD_AVX512_BF16;
    }
    const char *force = getenv("SIPU_SIMD");
    if (force && *force) {
        int want = 99;
        if (!strcasecmp(force, "scalar")) want = SIPU_SIMD_SCALAR;
        else if (!strcasecmp(force, "avx2")) want = SIPU_SIMD_AVX2;
        else if (!strcasecmp(force, "avx512")) want = SIPU_SIMD_AVX512;
        else if (!strcasecmp(force, "avx512_bf16")) want = SIPU_SIMD_AVX512_BF16;
        if (want < level) level = want; /* never above what the CPU has */
        if (want != 99) return -level - 1; /* forced: no AMX either */
    }
    return level;
}

/* AMX-TILE + AMX-BF16 in cpuid, the tile state enabled in XCR0, and Linux's permission for it */
static bool detect_amx(void) {
#if defined(__x86_64__) && defined(__linux__)
    unsigned a, b, c, d;
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d) || !(d & (1u << 22)) || !(d & (1u << 24))) return false;
    if (!__get_cpuid(1, &a, &b, &c, &d) || !(c & (1u << 27))) return false; /* OSXSAVE */
    uint32_t lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    if ((lo & (3u << 17)) != (3u << 17)) return false;
    return syscall(SYS_arch_prctl, 0x1023 /* ARCH_REQ_XCOMP_PERM */, 18 /* XFEATURE_XTILEDATA */) == 0;
#else
    return false;
#endif
}

/* Runs when the library is loaded, so every later call sees one fixed choice. */
__attribute__((constructor)) static void sipu_init(void) {
    simd_level = detect_simd();
    bool forced = simd_level < 0;
    if (forced) simd_level = -simd_level - 1;
    amx_hw = detect_amx();
    amx_ok = !forced && simd_level == SIPU_SIMD_AVX512_BF16 && amx_hw;
    const char *n = getenv("SIPU_NUM_THREADS");
    int t = n ? atoi(n) : 0;
#ifdef _OPENMP
    if (t <= 0) t = omp_get_num_procs();
#endif
    num_threads = t > 0 ? t : 1;
}

SIPU_API int32_t sipu_simd(void) { return simd_level; }

bool sipu_amx(void) { return amx_ok; }
bool sipu_amx_available(void) { return amx_hw; }

SIPU_API const char *sipu_simd_name(void) {
    switch (simd_level) {
    case SIPU_SIMD_AVX512_BF16: return amx_ok ? "avx512_bf16+amx" : "avx512_bf16";
    case SIPU_SIMD_AVX512: return "avx512";
    case SIPU_SIMD_AVX2: return "avx2";
    default: return "scalar";
    }
}

const sipu_vtable *sipu_vt(void) {
    switch (simd_level) {
    case SIPU_SIMD_AVX512_BF16:
    case SIPU_SIMD_AVX512: return &sipu_vt_avx512;
    case SIPU_SIMD_AVX2: return &sipu_vt_avx2;
    default: return &sipu_vt_scalar;
    }
}

SIPU_API void sipu_set_num_threads(int32_t n) { num_threads = n > 0 ? n : 1; }
SIPU_API int32_t sipu_get_num_threads(void) { return num_threads; }
int sipu_threads(void) { return num_threads; }

int sipu_threads_for(double work) {
    const double per_thread = 4e6;
    double k = work / per_thread;
    return k >= num_threads ? num_threads : k < 2 ? 1 : (int) k;
}

/* ---- descriptors ---------------------------------------------------------------------------- */

int sipu_itemsize(int32_t d) {
    static const int sizes[] = {8, 4, 2, 2, 1, 1, 8, 4, 2, 1, 1, 1};
    return d >= 0 && d <= SIPU_BOOL ? sizes[d] : 0;
}

const char *sipu_dtype_name(int32_t d) {
    static const char *names[] = {"float64", "float32", "float16", "bfloat16", "float8_e4m3fn", "float8_e5m2",
                                  "int64", "int32", "int16", "int8", "uint8", "bool"};
    return d >= 0 && d <= SIPU_BOOL ? names[d] : "invalid";
}

int64_t sipu_numel(const sipu_tensor *t) {
    int64_t n = 1;
    for (int i = 0; i < t->ndim; i++) n *= t->sizes[i];
    return n;
}

sipu_status sipu_check(const sipu_tensor *t, const char *fn, const char *arg) {
    if (!t) return sipu_fail(SIPU_ERR_INVALID_ARGUMENT, "%s: %s is NULL", fn, arg);
    if (t->ndim < 0 || t->ndim > SIPU_MAX_DIMS)
        return sipu_fail(SIPU_ERR_INVALID_ARGUMENT, "%s: %s has %d dimensions (0..%d allowed)", fn, arg, t->ndim, SIPU_MAX_DIMS);
    if (!sipu_itemsize(t->dtype)) return sipu_fail(SIPU_ERR_UNSUPPORTED_DTYPE, "%s: %s has unknown dtype code %d", fn, arg, t->dtype);
    int64_t n = 1;
    for (int i = 0; i < t->ndim; i++) {
        if (t->sizes[i] < 0) return sipu_fail(SIPU_ERR_INVALID_ARGUMENT, "%s: %s has negative size %lld in dim %d", fn, arg, (long long) t->sizes[i], i);
        if (t->strides[i] < 0) return sipu_fail(SIPU_ERR_INVALID_ARGUMENT, "%s: %s has negative stride in dim %d", fn, arg, i);
        if (t->sizes[i] && n > INT64_MAX / t->sizes[i]) return sipu_fail(SIPU_ERR_INVALID_ARGUMENT, "%s: %s numel overflows", fn, arg);
        n *= t->sizes[i];
    }
    if (n > 0 && !t->data) return sipu_fail(SIPU_ERR_INVALID_ARGUMENT, "%s: %s has no data", fn, arg);
    return SIPU_OK;
}

sipu_status sipu_check_same_shape(const sipu_tensor *t, const sipu_tensor *ref, const char *fn, const char *arg) {
    if (t->ndim != ref->ndim) return sipu_fail(SIPU_ERR_INVALID_ARGUMENT, "%s: %s has %d dimensions, expected %d", fn, arg, t->ndim, ref->ndim);
    for (int i = 0; i < t->ndim; i++)
        if (t->sizes[i] != ref->sizes[i])
            return sipu_fail(SIPU_ERR_INVALID_ARGUMENT, "%s: %s has size %lld in dim %d, expected %lld", fn, arg,
                             (long long) t->sizes[i], i, (long long) ref->sizes[i]);
    return SIPU_OK;
}
