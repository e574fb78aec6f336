/**
 * Kernels written once over the iteration core: elementwise ops by compute type
 * ({@link dev.sipu.cpu.loops.Pointwise} with an op given as {@link dev.sipu.cpu.loops.UnaryOp} or
 * {@link dev.sipu.cpu.loops.BinaryOp}), dtype-converting copies and fills.
 */
package dev.sipu.cpu.loops;
