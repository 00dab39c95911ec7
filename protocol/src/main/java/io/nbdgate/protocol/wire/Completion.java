package io.nbdgate.protocol.wire;

import io.nbdgate.protocol.NbdError;

/**
 * How a request ended, as a {@link ReplyReassembler.Step#COMPLETED} step reports it. One instance per
 * reassembler, refilled at each completion (no allocation per reply): read it before the next step.
 */
public final class Completion<T> {
    T request;
    NbdError error;
    String message;
    long errorOffset;

    public T request() {
        return request;
    }

    /** Null on success; otherwise the first error the server reported for the request. */
    public NbdError error() {
        return error;
    }

    /** The server's human-readable message for the error, or null. */
    public String message() {
        return message;
    }

    /** Offset of an ERROR_OFFSET chunk, or -1. */
    public long errorOffset() {
        return errorOffset;
    }
}
