package io.nbdgate.gateway.nbd.client;

/** The connection could not be set up or was lost: network error, handshake failure, protocol violation. */
public final class NbdConnectionException extends RuntimeException {
    public NbdConnectionException(String message) {
        super(message);
    }

    public NbdConnectionException(String message, Throwable cause) {
        super(message, cause);
    }
}
