package dev.sipu.api;

/**
 * A call whose arguments are wrong: it names the op, the argument and what was wrong. Thrown before
 * anything is written, so the call had no effect.
 */
public class OpArgumentException extends SipuException {
    private final String op;
    private final String argument;

    public OpArgumentException(String op, String argument, String problem) {
        super(op + ": argument '" + argument + "': " + problem);
        this.op = op;
        this.argument = argument;
    }

    public String op() { return op; }
    public String argument() { return argument; }
}
