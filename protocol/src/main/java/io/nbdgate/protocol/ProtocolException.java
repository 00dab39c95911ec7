package io.nbdgate.protocol;

/** Checked carrier of a {@link ProtocolViolation} for APIs that return a value on success. */
public final class ProtocolException extends Exception {
    private final transient ProtocolViolation violation;

    public ProtocolException(ProtocolViolation violation) {
        super(violation.message(), null, false, false);
        this.violation = violation;
    }

    public ProtocolViolation violation() {
        return violation;
    }
}
