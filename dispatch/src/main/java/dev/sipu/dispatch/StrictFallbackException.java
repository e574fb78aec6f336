package dev.sipu.dispatch;

import dev.sipu.api.SipuException;

/** Thrown in strict mode where an op would otherwise fall back to the CPU. */
public class StrictFallbackException extends SipuException {
    private final String op;

    public StrictFallbackException(String op, String device) {
        super(op + ": no kernel for " + device + " and strict mode forbids the CPU fallback");
        this.op = op;
    }

    public String op() { return op; }
}
