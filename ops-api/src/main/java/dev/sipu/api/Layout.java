package dev.sipu.api;

/** PyTorch layouts; only strided tensors exist here. */
public enum Layout {
    STRIDED, SPARSE_COO;

    public static Layout parse(String s) {
        return valueOf(s.replace("torch.", "").toUpperCase(java.util.Locale.ROOT));
    }
}
