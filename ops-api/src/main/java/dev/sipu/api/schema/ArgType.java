package dev.sipu.api.schema;

/** The argument types of PyTorch's schema language, and the Java type a boxed call carries for each. */
public enum ArgType {
    /** {@code Tensor}: a {@link dev.sipu.api.Tensor}. */
    TENSOR,
    /** {@code Tensor[]}: a {@code List<Tensor>}. */
    TENSOR_LIST,
    /** {@code Tensor?[]}: a {@code List<Tensor>} whose elements may be null. */
    OPTIONAL_TENSOR_LIST,
    /** {@code int}, {@code SymInt}: a {@code Long}. */
    INT,
    /** {@code int[]}, {@code SymInt[]}: a {@code long[]}. */
    INT_LIST,
    /** {@code float}: a {@code Double}. */
    FLOAT,
    /** {@code float[]}: a {@code double[]}. */
    FLOAT_LIST,
    /** {@code bool}: a {@code Boolean}. */
    BOOL,
    /** {@code bool[]}: a {@code boolean[]}. */
    BOOL_LIST,
    /** {@code Scalar}: a {@link dev.sipu.api.Scalar}. */
    SCALAR,
    /** {@code ScalarType}: a {@link dev.sipu.api.DType}. */
    SCALAR_TYPE,
    /** {@code str}: a {@code String}. */
    STR,
    /** {@code Device}: a {@link dev.sipu.api.Device}. */
    DEVICE,
    /** {@code Layout}: a {@link dev.sipu.api.Layout}. */
    LAYOUT,
    /** {@code MemoryFormat}: a {@link dev.sipu.api.MemoryFormat}. */
    MEMORY_FORMAT,
    /** {@code Generator}: a {@link dev.sipu.api.Generator}. */
    GENERATOR;

    public static ArgType parse(String base) {
        return switch (base) {
            case "Tensor" -> TENSOR;
            case "Tensor[]" -> TENSOR_LIST;
            case "Tensor?[]" -> OPTIONAL_TENSOR_LIST;
            case "int", "SymInt" -> INT;
            case "int[]", "SymInt[]" -> INT_LIST;
            case "float" -> FLOAT;
            case "float[]" -> FLOAT_LIST;
            case "bool" -> BOOL;
            case "bool[]" -> BOOL_LIST;
            case "Scalar" -> SCALAR;
            case "ScalarType" -> SCALAR_TYPE;
            case "str" -> STR;
            case "Device" -> DEVICE;
            case "Layout" -> LAYOUT;
            case "MemoryFormat" -> MEMORY_FORMAT;
            case "Generator" -> GENERATOR;
            default -> throw new IllegalArgumentException("unknown schema type '" + base + "'");
        };
    }
}
