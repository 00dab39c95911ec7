package io.nbdgate.protocol.wire;

import io.nbdgate.protocol.Command;

/**
 * A request as it went out: what its reply chunks are checked against. The caller's own request record
 * implements it, so the reassembler keeps no copy of command, flags or range.
 */
public interface SentRequest {
    Command command();

    int flags();

    long offset();

    long length();
}
