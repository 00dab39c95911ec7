package io.nbdgate.gateway.session;

import io.nbdgate.gateway.link.TimeoutTicker;
import io.netty.channel.IoEventLoop;
import java.time.Duration;
import java.util.concurrent.Future;

/**
 * A session's two clocks while it has no working link: when the next connection attempt starts (backoff), and
 * when waiting requests stop waiting (the reconnect timeout). Loop thread only.
 */
final class RetryTimers {
    private final IoEventLoop loop;
    private Future<?> retry;
    private Future<?> giveUp;

    RetryTimers(IoEventLoop loop) {
        this.loop = loop;
    }

    /** Runs {@code attempt} after {@code delay}, at once (on this call) when the delay is zero. */
    void retryAfter(Duration delay, Runnable attempt) {
        if (delay.isZero()) {
            attempt.run();
        } else {
            retry = TimeoutTicker.after(loop, delay, () -> {
                retry = null;
                attempt.run();
            });
        }
    }

    boolean retryPending() {
        return retry != null;
    }

    void cancelRetry() {
        if (retry != null) {
            retry.cancel(false);
            retry = null;
        }
    }

    /** Starts the reconnect timeout unless it already runs. */
    void giveUpAfter(Duration limit, Runnable giveUpNow) {
        if (giveUp == null) {
            giveUp = TimeoutTicker.after(loop, limit, () -> {
                giveUp = null;
                giveUpNow.run();
            });
        }
    }

    void cancelGiveUp() {
        if (giveUp != null) {
            giveUp.cancel(false);
            giveUp = null;
        }
    }

    void cancelAll() {
        cancelRetry();
        cancelGiveUp();
    }
}
