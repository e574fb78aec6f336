package dev.sipu.api;

import java.util.Locale;

/**
 * Element types, named as PyTorch names them. {@link #code()} is the number the C ABI
 * ({@code sipu_dtype} in kernels-c) uses for the same type.
 */
public enum DType {
    FLOAT64(0, 8, "float64", "F64", Category.FLOAT, 7),
    FLOAT32(1, 4, "float32", "F32", Category.FLOAT, 6),
    FLOAT16(2, 2, "float16", "F16", Category.FLOAT, 5),
    BFLOAT16(3, 2, "bfloat16", "BF16", Category.FLOAT, 15),
    FLOAT8_E4M3FN(4, 1, "float8_e4m3fn", "F8_E4M3", Category.FLOAT, 24),
    FLOAT8_E5M2(5, 1, "float8_e5m2", "F8_E5M2", Category.FLOAT, 23),
    INT64(6, 8, "int64", "I64", Category.INTEGRAL, 4),
    INT32(7, 4, "int32", "I32", Category.INTEGRAL, 3),
    INT16(8, 2, "int16", "I16", Category.INTEGRAL, 2),
    INT8(9, 1, "int8", "I8", Category.INTEGRAL, 1),
    UINT8(10, 1, "uint8", "U8", Category.INTEGRAL, 0),
    BOOL(11, 1, "bool", "BOOL", Category.BOOL, 11);

    /** Type-promotion categories, lowest first. */
    public enum Category { BOOL, INTEGRAL, FLOAT }

    private static final DType[] BY_CODE = values();

    private final int code;
    private final int itemSize;
    private final String torchName;
    private final String safetensorsName;
    private final Category category;
    private final int scalarTypeIndex;

    DType(int code, int itemSize, String torchName, String safetensorsName, Category category, int scalarTypeIndex) {
        this.code = code;
        this.itemSize = itemSize;
        this.torchName = torchName;
        this.safetensorsName = safetensorsName;
        this.category = category;
        this.scalarTypeIndex = scalarTypeIndex;
    }

    /** The number of this type in PyTorch's c10::ScalarType enum (what a ScalarType is as an int). */
    public int scalarTypeIndex() { return scalarTypeIndex; }

    public int code() { return code; }
    public int itemSize() { return itemSize; }
    public String torchName() { return torchName; }
    public String safetensorsName() { return safetensorsName; }
    public Category category() { return category; }
    public boolean isFloatingPoint() { return category == Category.FLOAT; }
    public boolean isIntegral() { return category == Category.INTEGRAL; }
    public boolean isBool() { return this == BOOL; }
    public boolean isFloat8() { return this == FLOAT8_E4M3FN || this == FLOAT8_E5M2; }
    /** Half-width floats whose arithmetic PyTorch does in fp32 and rounds once. */
    public boolean isReducedFloat() { return this == FLOAT16 || this == BFLOAT16 || isFloat8(); }

    public static DType ofCode(int code) {
        if (code < 0 || code >= BY_CODE.length) throw new IllegalArgumentException("no dtype with code " + code);
        return BY_CODE[code];
    }

    /** Parses a PyTorch name ({@code bfloat16}, also {@code torch.bfloat16}, {@code float}, {@code long}, ...). */
    public static DType parse(String name) {
        String n = name.toLowerCase(Locale.ROOT);
        if (n.startsWith("torch.")) n = n.substring(6);
        return switch (n) {
            case "float", "float32" -> FLOAT32;
            case "double", "float64" -> FLOAT64;
            case "half", "float16" -> FLOAT16;
            case "bfloat16" -> BFLOAT16;
            case "float8_e4m3fn" -> FLOAT8_E4M3FN;
            case "float8_e5m2" -> FLOAT8_E5M2;
            case "long", "int64" -> INT64;
            case "int", "int32" -> INT32;
            case "short", "int16" -> INT16;
            case "int8" -> INT8;
            case "uint8" -> UINT8;
            case "bool" -> BOOL;
            default -> throw new IllegalArgumentException("unknown dtype '" + name + "'");
        };
    }

    public static DType ofSafetensors(String name) {
        for (DType d : BY_CODE) if (d.safetensorsName.equals(name)) return d;
        throw new IllegalArgumentException("unsupported safetensors dtype '" + name + "'");
    }

    @Override
    public String toString() { return torchName; }
}
