package dev.sipu.api;

/** Base of every exception the library throws on purpose. */
public class SipuException extends RuntimeException {
    public SipuException(String message) { super(message); }
    public SipuException(String message, Throwable cause) { super(message, cause); }
}
