package dev.sipu.conformance;

/** The result of one case on one device. SKIPPED means the op could not be run there; it never counts as passed. */
public record Outcome(Status status, String message) {
    public enum Status { PASSED, FAILED, SKIPPED }

    static Outcome passed() { return new Outcome(Status.PASSED, ""); }
    static Outcome failed(String why) { return new Outcome(Status.FAILED, why); }
    static Outcome skipped(String why) { return new Outcome(Status.SKIPPED, why); }
}
