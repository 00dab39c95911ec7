package io.nbdgate.gateway.session;

import java.time.Instant;
import java.util.Locale;
import org.slf4j.Logger;
import org.slf4j.event.Level;
import org.slf4j.spi.LoggingEventBuilder;

/**
 * What a queue session knows of its connection: the state, the attempts since it was lost, since when, the last
 * error, and the counts of reconnects and resent requests. The loop thread writes it; {@link #published()} is a
 * snapshot any thread may read (list, status, metrics).
 */
final class SessionStatus {
    private final String device;
    private final int queue;
    private LinkStatus.State state = LinkStatus.State.RECONNECTING;
    private int attempts;
    private Instant since = Instant.now();
    private String lastError;
    private long reconnects;
    private long resent;
    private volatile LinkStatus published;

    SessionStatus(String device, int queue) {
        this.device = device;
        this.queue = queue;
        publish();
    }

    /**
     * A log line for a change to {@code to}, carrying device=, queue= and state= as key-value pairs: the text
     * log shows them after the message, the JSON log as fields, so journald or Loki users filter by device.
     */
    LoggingEventBuilder line(Logger log, Level level, LinkStatus.State to) {
        return log.atLevel(level).addKeyValue("device", device).addKeyValue("queue", queue)
                .addKeyValue("state", to.name().toLowerCase(Locale.ROOT));
    }

    LinkStatus.State state() {
        return state;
    }

    /** Moves to {@code s} (a new "since" if it changed), with {@code error} as the last error unless null. */
    void become(LinkStatus.State s, String error) {
        if (s != state) {
            since = Instant.now();
        }
        state = s;
        if (error != null) {
            lastError = error;
        }
        if (s == LinkStatus.State.CONNECTED) {
            attempts = 0;
        }
        publish();
    }

    void error(String error) {
        lastError = error;
        publish();
    }

    private String tls;

    String lastError() {
        return lastError;
    }

    int attempts() {
        return attempts;
    }

    /** The number of the attempt about to start (0 first), counted. */
    int nextAttempt() {
        int n = attempts++;
        publish();
        return n;
    }

    /** The carrying link was lost: one more reconnect, and attempts count from zero. */
    void linkLost() {
        reconnects++;
        attempts = 0;
    }

    void resent(int requests) {
        resent += requests;
    }

    /** The TLS of the carrying link ("kernel TLS 1.3 ... CN=..."), or null in plaintext. */
    void tls(String description) {
        tls = description;
    }

    void publish() {
        published = new LinkStatus(state, attempts, since, lastError, reconnects, resent, tls);
    }

    LinkStatus published() {
        return published;
    }
}
