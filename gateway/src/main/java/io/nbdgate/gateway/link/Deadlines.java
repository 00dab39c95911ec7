package io.nbdgate.gateway.link;

import java.time.Duration;
import java.util.concurrent.Future;

/**
 * A link's two timers, both on {@link TimeoutTicker} (off the loop's schedule): connect and handshake must
 * finish within the connect timeout, and once READY, a request unanswered for the I/O timeout ends the link.
 * Ending the link, not failing the request: the owner sends it again on the next link.
 */
final class Deadlines {
    private final Link link;
    private Future<?> timer;

    Deadlines(Link link) {
        this.link = link;
    }

    void startConnect() {
        Duration limit = link.options.connectTimeout();
        timer = TimeoutTicker.after(link.loop, limit, () -> {
            LinkState s = link.state();
            if (s == LinkState.CONNECTING || s == LinkState.HANDSHAKE) {
                link.fail("connecting to " + link.peer + " timed out after " + limit.toMillis()
                        + " ms");
            }
        });
    }

    void startIo() {
        stop();
        long period = Math.max(100, Math.min(1000, link.options.ioTimeout().toMillis() / 4));
        timer = TimeoutTicker.every(link.loop, Duration.ofMillis(period), this::check);
    }

    void stop() {
        if (timer != null) {
            timer.cancel(false);
            timer = null;
        }
    }

    private void check() {
        if (link.state() != LinkState.READY) {
            return;
        }
        long now = System.nanoTime();
        long limit = link.options.ioTimeout().toNanos();
        for (Request r : link.requests) {
            if (r.phase == Request.Phase.ON_LINK && !r.replied && now - r.startNanos > limit) {
                link.fail("no reply from " + link.peer + " within "
                        + link.options.ioTimeout().toMillis() + " ms");
                return;
            }
        }
    }
}
