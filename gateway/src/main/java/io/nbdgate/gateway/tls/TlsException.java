package io.nbdgate.gateway.tls;

/** A TLS connection could not be made or broke; the message is one line naming the cause. */
public final class TlsException extends RuntimeException {
    public TlsException(String message) {
        super(message);
    }

    public TlsException(String message, Throwable cause) {
        super(message, cause);
    }
}
