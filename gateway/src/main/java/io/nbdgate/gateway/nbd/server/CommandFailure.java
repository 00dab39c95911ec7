package io.nbdgate.gateway.nbd.server;

import io.nbdgate.protocol.NbdError;
import java.io.IOException;

/** A backend failure with the NBD error the client should see, where EIO would say too little. */
final class CommandFailure extends IOException {
    final NbdError error;

    CommandFailure(NbdError error, String message) {
        super(message);
        this.error = error;
    }
}
