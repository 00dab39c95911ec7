package io.nbdgate.uring;

import java.io.IOException;

/** A kernel call failed; the message names the call and the errno so an operator can act on it. */
public final class UringException extends IOException {
    private final int errno;

    public UringException(String call, int errno) {
        super(call + ": " + Errno.name(errno) + " (" + errno + ")");
        this.errno = errno;
    }

    /** Positive errno value as the kernel reported it. */
    public int errno() {
        return errno;
    }
}
