package io.nbdgate.gateway.session;

import java.time.Instant;

/**
 * A queue's connection as `list`, the status endpoint and the log show it.
 *
 * @param state      where the queue's session is
 * @param attempt    connection attempts since the link was lost (0 while connected)
 * @param since      when the current state began
 * @param lastError  why the last link ended or the last attempt failed; null if none did
 * @param reconnects links lost and replaced (or being replaced) so far
 * @param resent     requests sent again on a new link after the old one ended without answering them
 */
public record LinkStatus(State state, int attempt, Instant since, String lastError, long reconnects, long resent,
                         String tls) {

    public LinkStatus(State state, int attempt, Instant since, String lastError, long reconnects, long resent) {
        this(state, attempt, since, lastError, reconnects, resent, null);
    }

    public enum State {
        /** A link is READY and carries the queue's requests. */
        CONNECTED,
        /** No link: requests wait, and attempts go on with backoff. */
        RECONNECTING,
        /** No link for longer than reconnect-timeout, or the export changed: I/O fails with EIO; attempts go on. */
        FAILED,
        /** Detached: nothing is served or attempted. */
        CLOSED
    }

    public String label() {
        return state.name().toLowerCase(java.util.Locale.ROOT);
    }
}
