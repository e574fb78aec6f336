package dev.sipu.api;

import java.util.Locale;

/** A device: {@code cpu} or {@code sipu:N}. */
public record Device(Type type, int index) {

    public enum Type { CPU, SIPU }

    public static final Device CPU = new Device(Type.CPU, 0);
    public static final Device SIPU0 = new Device(Type.SIPU, 0);

    public Device {
        if (type == null) throw new IllegalArgumentException("device type is null");
        if (index < 0) throw new IllegalArgumentException("device index must be >= 0, got " + index);
        if (type == Type.CPU && index != 0) throw new IllegalArgumentException("cpu has only index 0, got " + index);
    }

    public static Device sipu(int index) { return new Device(Type.SIPU, index); }

    /** Parses {@code cpu}, {@code sipu}, {@code sipu:1}. */
    public static Device parse(String s) {
        String t = s.trim().toLowerCase(Locale.ROOT);
        int colon = t.indexOf(':');
        String name = colon < 0 ? t : t.substring(0, colon);
        int index;
        try {
            index = colon < 0 ? 0 : Integer.parseInt(t.substring(colon + 1));
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException("bad device index in '" + s + "'");
        }
        return switch (name) {
            case "cpu" -> CPU;
            case "sipu" -> sipu(index);
            default -> throw new IllegalArgumentException("unknown device '" + s + "' (cpu or sipu:N)");
        };
    }

    public boolean isCpu() { return type == Type.CPU; }
    public boolean isSipu() { return type == Type.SIPU; }

    @Override
    public String toString() { return type == Type.CPU ? "cpu" : "sipu:" + index; }
}
