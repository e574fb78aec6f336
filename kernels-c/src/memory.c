/* Device memory. Here it is host memory; a real SIPU SDK replaces these five functions. */
#include "internal.h"

#include <stdlib.h>
#ifdef __linux__
#include <sys/mman.h>
#endif

#define SIPU_ALIGN 64
/* Refuse sizes no allocator could serve instead of letting them wrap. */
#define SIPU_MAX_ALLOC ((int64_t) 1 << 46)

SIPU_API void *sipu_malloc(int64_t bytes) {
    if (bytes < 0 || bytes > SIPU_MAX_ALLOC) {
        sipu_fail(SIPU_ERR_OUT_OF_MEMORY, "sipu_malloc: cannot allocate %lld bytes", (long long) bytes);
        return NULL;
    }
    size_t size = (size_t) ((bytes + SIPU_ALIGN - 1) / SIPU_ALIGN * SIPU_ALIGN);
    if (size == 0) size = SIPU_ALIGN;
    void *p = aligned_alloc(SIPU_ALIGN, size);
    if (!p) sipu_fail(SIPU_ERR_OUT_OF_MEMORY, "sipu_malloc: out of device memory (%lld bytes)", (long long) bytes);
    return p;
}

SIPU_API void sipu_free(void *ptr) { free(ptr); }

#define HUGE_PAGE ((size_t) 2 << 20)

void *sipu_alloc_scratch(size_t bytes) {
    if (bytes < HUGE_PAGE / 2) return aligned_alloc(SIPU_ALIGN, (bytes + SIPU_ALIGN - 1) / SIPU_ALIGN * SIPU_ALIGN);
    const size_t size = (bytes + HUGE_PAGE - 1) / HUGE_PAGE * HUGE_PAGE;
    void *p = aligned_alloc(HUGE_PAGE, size);
#ifdef MADV_HUGEPAGE
    if (p) madvise(p, size, MADV_HUGEPAGE); /* advice only: without it the pages are 4 KiB, as malloc's */
#endif
    return p;
}

static sipu_status copy(const char *fn, void *dst, const void *src, int64_t bytes) {
    if (bytes < 0) return sipu_fail(SIPU_ERR_INVALID_ARGUMENT, "%s: negative size %lld", fn, (long long) bytes);
    if (bytes == 0) return SIPU_OK;
    if (!dst || !src) return sipu_fail(SIPU_ERR_INVALID_ARGUMENT, "%s: NULL pointer", fn);
    memcpy(dst, src, (size_t) bytes);
    return SIPU_OK;
}

SIPU_API sipu_status sipu_memcpy_h2d(void *dst, const void *src, int64_t bytes) { return copy("sipu_memcpy_h2d", dst, src, bytes); }
SIPU_API sipu_status sipu_memcpy_d2h(void *dst, const void *src, int64_t bytes) { return copy("sipu_memcpy_d2h", dst, src, bytes); }
SIPU_API sipu_status sipu_memcpy_d2d(void *dst, const void *src, int64_t bytes) { return copy("sipu_memcpy_d2d", dst, src, bytes); }
