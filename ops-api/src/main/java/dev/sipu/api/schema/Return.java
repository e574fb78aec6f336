package dev.sipu.api.schema;

/**
 * One returned value: a tensor, a tensor list, a Scalar or a ScalarType. {@code aliasOf} names the
 * alias set ({@code Tensor(a)}) shared with an argument, or is null for a fresh value.
 */
public record Return(String name, ArgType type, String aliasOf, boolean written) {}
