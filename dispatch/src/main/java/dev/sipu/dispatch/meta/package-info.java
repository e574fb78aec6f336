/**
 * The device-independent half of the ops, as PyTorch's structured-kernel meta functions: argument
 * checks with PyTorch's messages, type promotion, broadcast shapes, memory-overlap rules, Scalar
 * conversion and output allocation. Every device module calls these, so an op's rules are written once.
 */
package dev.sipu.dispatch.meta;
