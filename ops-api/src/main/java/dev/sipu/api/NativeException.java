package dev.sipu.api;

/** A native kernel returned an error status; the message is the kernel's own. */
public class NativeException extends SipuException {
    private final int status;

    public NativeException(String op, int status, String message) {
        super(op + ": native kernel failed (status " + status + "): " + message);
        this.status = status;
    }

    public int status() { return status; }
}
