package io.nbdgate.gateway.nbd.client;

import io.nbdgate.protocol.NbdError;

/**
 * A command failed with an NBD error: either the server replied with one, or the client refused the
 * command before sending it because the export does not allow it ({@link #local()}).
 */
public final class NbdCommandException extends RuntimeException {
    private final NbdError error;
    private final boolean local;

    public NbdCommandException(NbdError error, String message, boolean local) {
        super(message, null, false, false);
        this.error = error;
        this.local = local;
    }

    public NbdError error() {
        return error;
    }

    /** The Linux errno a block request completes with. */
    public int errno() {
        return error.errno();
    }

    /** True when the client refused the command without asking the server. */
    public boolean local() {
        return local;
    }
}
