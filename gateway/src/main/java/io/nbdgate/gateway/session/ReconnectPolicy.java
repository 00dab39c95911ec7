package io.nbdgate.gateway.session;

import java.time.Duration;
import java.util.concurrent.ThreadLocalRandom;

/**
 * When to try again after a link is lost: the first attempt at once, then exponential backoff with jitter
 * (so the queues of many devices do not hammer a restarting server in step), capped at {@code maxDelay}.
 *
 * @param reconnectTimeout how long requests may wait without a link before they fail with EIO; null: forever
 * @param firstDelay       the delay before the second attempt
 * @param maxDelay         the cap
 */
public record ReconnectPolicy(Duration reconnectTimeout, Duration firstDelay, Duration maxDelay) {
    public static final Duration DEFAULT_RECONNECT_TIMEOUT = Duration.ofMinutes(5);

    public static ReconnectPolicy of(Duration reconnectTimeout) {
        return new ReconnectPolicy(reconnectTimeout, Duration.ofMillis(100), Duration.ofSeconds(3));
    }

    /** The delay before attempt {@code n} (0 for the first), jittered by up to a quarter either way. */
    public Duration delay(int n) {
        if (n <= 0) {
            return Duration.ZERO;
        }
        long base = firstDelay.toMillis() << Math.min(n - 1, 20);
        long capped = Math.min(maxDelay.toMillis(), base);
        double jitter = 0.75 + ThreadLocalRandom.current().nextDouble() * 0.5;
        return Duration.ofMillis(Math.max(1, (long) (capped * jitter)));
    }
}
