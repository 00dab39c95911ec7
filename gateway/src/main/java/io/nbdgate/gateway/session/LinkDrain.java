package io.nbdgate.gateway.session;

import io.nbdgate.gateway.link.Link;
import io.nbdgate.gateway.link.LinkState;
import io.nbdgate.gateway.link.Request;
import io.nbdgate.gateway.link.TimeoutTicker;
import io.netty.channel.IoEventLoop;
import java.time.Duration;

/**
 * Ends a queue's link when the device goes: politely (NBD_CMD_DISC) once no request is on it, and cut after
 * a grace period if the server never answers the last ones. Loop thread only.
 */
final class LinkDrain {
    private static final Duration POLL = Duration.ofMillis(50);

    private LinkDrain() {
    }

    static void close(IoEventLoop loop, Link link, Request[] requests, Duration grace) {
        if (link.state() == LinkState.READY && idle(requests)) {
            link.disconnect();
            return;
        }
        TimeoutTicker.after(loop, grace, () -> link.closeAsync("detached"));
        poll(loop, link, requests);
    }

    private static void poll(IoEventLoop loop, Link link, Request[] requests) {
        if (link.state() != LinkState.READY) {
            return;
        }
        if (idle(requests)) {
            link.disconnect();
        } else {
            TimeoutTicker.after(loop, POLL, () -> poll(loop, link, requests));
        }
    }

    private static boolean idle(Request[] requests) {
        for (Request r : requests) {
            if (r.phase() == Request.Phase.ON_LINK) {
                return false;
            }
        }
        return true;
    }
}
