package io.nbdgate.gateway.testsupport;

import io.vertx.core.Future;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;

/** Blocks a test thread on a Vert.x future; failures come back as the future's own exception. */
public final class Await {
    private Await() {}

    public static <T> T result(Future<T> f) {
        try {
            return f.toCompletionStage().toCompletableFuture().get(60, TimeUnit.SECONDS);
        } catch (ExecutionException e) {
            Throwable c = e.getCause();
            if (c instanceof RuntimeException r) {
                throw r;
            }
            throw new AssertionError("future failed", c);
        } catch (TimeoutException e) {
            throw new AssertionError("future did not complete within 60 s", e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new AssertionError("interrupted", e);
        }
    }

    /** The exception a future failed with; an assertion error if it succeeded. */
    public static Throwable failure(Future<?> f) {
        try {
            Object v = result(f);
            throw new AssertionError("expected a failure, got " + v);
        } catch (RuntimeException e) {
            return e;
        }
    }
}
