package io.nbdgate.gateway.link;

/**
 * A link's life, one way only:
 * <pre>
 * CONNECTING ──► HANDSHAKE ──► READY ──► DRAINING ──► CLOSED
 *      └─────────────┴───────────┴──────────┘ (any failure, timeout or disconnect)
 * </pre>
 * CONNECTING: socket, options, connect. HANDSHAKE: the protocol module's client state machine over the ring.
 * READY: requests and replies. DRAINING: no new work; outstanding operations come back (shutdown makes
 * receives and sends end), then the socket is closed. CLOSED: nothing outstanding; unanswered requests have
 * gone back to the owner.
 */
public enum LinkState {
    CONNECTING, HANDSHAKE, READY, DRAINING, CLOSED
}
