/** Matrix multiplication: the blocked Vector API kernel for fp32/fp16/bf16 and a plain one for fp64 and integers. */
package dev.sipu.cpu.gemm;
