/*
 * The shared iteration core (PyTorch's TensorIterator in miniature): operands of one shape with any
 * element strides are walked as 1-D runs after dropping size-1 dimensions and merging dimensions that
 * are contiguous for every operand; large iterations are split across OpenMP threads. Kernels supply
 * only the inner loop.
 */
#ifndef SIPU_ITER_H
#define SIPU_ITER_H

#include "internal.h"

#define SIPU_ITER_MAX_OPS 4

/* One run: n elements; ptrs[k] is operand k's first element, strides[k] its byte stride. */
typedef void (*sipu_loop_fn)(int64_t n, char *const *ptrs, const int64_t *strides, void *ctx);

/* ops[0..nops) share ops[0]'s ndim and sizes (callers broadcast with stride 0 beforehand). */
void sipu_iter_run(int nops, const sipu_tensor *const *ops, sipu_loop_fn fn, void *ctx);

#endif
