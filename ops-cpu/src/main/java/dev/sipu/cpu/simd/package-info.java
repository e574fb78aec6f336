/**
 * The one SIMD layer of the CPU module: fp32 vector primitives over float arrays ({@link dev.sipu.cpu.simd.Vec})
 * and the conversions between any dtype and fp32 lanes ({@link dev.sipu.cpu.simd.Floats}). Everything
 * above computes on float arrays and never touches a dtype's bits.
 */
package dev.sipu.cpu.simd;
