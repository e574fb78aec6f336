/**
 * The iteration core ({@link dev.sipu.cpu.iter.TensorIter}: coalesced 1-D runs over operands of any
 * strides) and the module's use of threads ({@link dev.sipu.cpu.iter.Parallel}).
 */
package dev.sipu.cpu.iter;
