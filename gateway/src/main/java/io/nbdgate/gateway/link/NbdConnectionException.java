package io.nbdgate.gateway.link;

/** An NBD connection that could not be made or was lost; the message is one line for the user. */
public final class NbdConnectionException extends Exception {
    public NbdConnectionException(String message) {
        super(message);
    }
}
