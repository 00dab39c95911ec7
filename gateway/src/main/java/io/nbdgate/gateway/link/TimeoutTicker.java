package io.nbdgate.gateway.link;

import io.netty.channel.IoEventLoop;
import java.time.Duration;
import java.util.concurrent.Future;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.ScheduledThreadPoolExecutor;
import java.util.concurrent.TimeUnit;

/**
 * The data path's timers, kept off the event loops' own schedule. A Netty io_uring loop turns its next
 * deadline into an IORING_OP_TIMEOUT on every wait for completions: one more SQE and kernel timer per loop
 * wake-up, on every request; with an empty schedule the loops of {@code QuietUringTransport} have none. A
 * connection's timers fire once a handshake or every few hundred milliseconds, so one shared daemon thread
 * keeps them and hands each firing to the connection's loop, where the task runs as before.
 */
public final class TimeoutTicker {
    private static final ScheduledThreadPoolExecutor TIMERS = create();

    private TimeoutTicker() {
    }

    private static ScheduledThreadPoolExecutor create() {
        ScheduledThreadPoolExecutor e = new ScheduledThreadPoolExecutor(1, r -> {
            Thread t = new Thread(r, "nbdgate-timeouts");
            t.setDaemon(true);
            return t;
        });
        e.setRemoveOnCancelPolicy(true); // a cancelled connect timer does not linger until its deadline
        return e;
    }

    /** Runs {@code task} on {@code loop} once, after {@code delay}. */
    public static Future<?> after(IoEventLoop loop, Duration delay, Runnable task) {
        return TIMERS.schedule(() -> handOver(loop, task), delay.toNanos(), TimeUnit.NANOSECONDS);
    }

    /** Runs {@code task} on {@code loop} every {@code period}, the first time after one period. */
    public static Future<?> every(IoEventLoop loop, Duration period, Runnable task) {
        long nanos = period.toNanos();
        return TIMERS.scheduleAtFixedRate(() -> handOver(loop, task), nanos, nanos, TimeUnit.NANOSECONDS);
    }

    private static void handOver(IoEventLoop loop, Runnable task) {
        try {
            loop.execute(task);
        } catch (RejectedExecutionException shutDown) {
            // The loop is shutting down: its connections close with it, nothing is left to time out.
        }
    }
}
