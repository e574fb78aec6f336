package dev.sipu.api;

/** PyTorch's memory formats; strided tensors here are row-major ("contiguous_format") or kept as given ("preserve_format"). */
public enum MemoryFormat {
    CONTIGUOUS_FORMAT, PRESERVE_FORMAT, CHANNELS_LAST, CHANNELS_LAST_3D;

    public static MemoryFormat parse(String s) {
        return valueOf(s.replace("torch.", "").toUpperCase(java.util.Locale.ROOT));
    }
}
