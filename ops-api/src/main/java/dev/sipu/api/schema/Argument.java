package dev.sipu.api.schema;

/**
 * One argument of a schema.
 *
 * @param name         the schema name ({@code self}, {@code alpha}, ...)
 * @param type         its type
 * @param optional     {@code T?}: may be None (null)
 * @param written      the op writes into it ({@code Tensor!}, {@code Tensor(a!)})
 * @param kwargOnly    declared after {@code *}
 * @param hasDefault   a default exists ({@link #defaultValue} may be null for {@code =None})
 * @param defaultValue the default, already in the boxed Java form of {@link ArgType}
 * @param fixedLength  {@code int[1]}: the list length a single int expands to, else 0
 */
public record Argument(String name, ArgType type, boolean optional, boolean written, boolean kwargOnly,
                       boolean hasDefault, Object defaultValue, int fixedLength) {

    @Override
    public String toString() {
        return type + (optional ? "?" : "") + (written ? "!" : "") + " " + name;
    }
}
