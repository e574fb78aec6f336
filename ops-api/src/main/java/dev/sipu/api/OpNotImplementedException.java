package dev.sipu.api;

/** No kernel, decomposition or fallback serves this op for the requested device. */
public class OpNotImplementedException extends SipuException {
    private final String op;

    public OpNotImplementedException(String op, String detail) {
        super(op + ": not implemented " + detail);
        this.op = op;
    }

    public String op() { return op; }
}
