package io.nbdgate.gateway.nbd.server;

import java.io.IOException;

/** A backend failure with the NBD error value the client should see (Wire.E*), not just EIO. */
final class CommandFailure extends IOException {
    final int nbdError;

    CommandFailure(int nbdError, String message) {
        super(message);
        this.nbdError = nbdError;
    }
}
