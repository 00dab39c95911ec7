package io.nbdgate.gateway.nbd.client;

/** A string that is not an NBD URI; the message is one line saying what to fix. */
public final class InvalidNbdUriException extends Exception {
    public InvalidNbdUriException(String message) {
        super(message);
    }
}
