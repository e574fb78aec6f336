package dev.sipu.dispatch;

import dev.sipu.api.Device;

/**
 * Where a kernel comes from. Device keys run on their device; {@link #COMPOSITE} kernels are written
 * once in terms of other ops (or of tensor metadata only) and serve every device.
 */
public enum DispatchKey {
    SIPU, CPU, COMPOSITE;

    public static DispatchKey of(Device device) {
        return device.isSipu() ? SIPU : CPU;
    }

    public boolean isDevice() { return this != COMPOSITE; }
}
