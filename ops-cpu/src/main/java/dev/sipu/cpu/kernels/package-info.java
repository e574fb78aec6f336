/**
 * The CPU kernels registered with the dispatcher, one class per op family (the same split as the
 * SIPU module): the shared meta of {@code dev.sipu.dispatch.meta} checks and allocates, the classes
 * here only compute.
 */
package dev.sipu.cpu.kernels;
