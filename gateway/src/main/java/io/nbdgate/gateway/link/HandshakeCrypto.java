package io.nbdgate.gateway.link;

import java.util.concurrent.Callable;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.ThreadPoolExecutor;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.BiConsumer;

/**
 * Runs a TLS handshake's crypto (key exchange, certificate checks, key derivation) off the link's event loop,
 * which meanwhile goes on serving the other queues it carries: warm, that is milliseconds per handshake, cold
 * (the first connection of a process) a second on a small machine, and every device reconnecting after a
 * server restart does it at once. A thread per CPU, started when needed, gone after a minute without work.
 */
final class HandshakeCrypto {
    private static final AtomicInteger THREADS = new AtomicInteger();
    private static final ThreadPoolExecutor WORKERS = workers();

    private HandshakeCrypto() {
    }

    private static ThreadPoolExecutor workers() {
        int n = Runtime.getRuntime().availableProcessors();
        ThreadPoolExecutor pool = new ThreadPoolExecutor(n, n, 60, TimeUnit.SECONDS, new LinkedBlockingQueue<>(),
                r -> {
                    Thread t = new Thread(r, "nbdgate-handshake-" + THREADS.getAndIncrement());
                    t.setDaemon(true);
                    return t;
                });
        pool.allowCoreThreadTimeOut(true);
        return pool;
    }

    /** Runs {@code work} on a worker, then {@code then} with its result or failure on the link's loop. */
    static <T> void run(Link link, Callable<T> work, BiConsumer<T, Throwable> then) {
        WORKERS.execute(() -> {
            T result = null;
            Throwable failure = null;
            try {
                result = work.call();
            } catch (Throwable t) {
                failure = t;
            }
            T r = result;
            Throwable f = failure;
            try {
                link.onLoop(() -> then.accept(r, f));
            } catch (RejectedExecutionException stopped) {
                // the loop has shut down, and the link with it: nobody waits for this handshake
            }
        });
    }
}
