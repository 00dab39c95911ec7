package io.nbdgate.gateway.cli;

import io.vertx.core.Future;
import io.vertx.core.Vertx;
import java.io.PrintWriter;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.function.Function;

/** Runs one asynchronous client task for a CLI command on a short-lived Vert.x instance. */
final class CliSupport {
    private CliSupport() {}

    /** 0 if the task succeeds; otherwise its message as one line on {@code err} and exit code 1. */
    static int withVertx(PrintWriter err, Function<Vertx, Future<?>> task) {
        Vertx vertx = Vertx.vertx();
        try {
            task.apply(vertx).toCompletionStage().toCompletableFuture().get(120, TimeUnit.SECONDS);
            return 0;
        } catch (ExecutionException e) {
            Throwable c = e.getCause() == null ? e : e.getCause();
            err.println("nbdgate: " + (c.getMessage() == null ? c.toString() : c.getMessage()));
            err.flush();
            return 1;
        } catch (TimeoutException e) {
            err.println("nbdgate: no answer from the NBD server within 120 s");
            err.flush();
            return 1;
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return 1;
        } finally {
            vertx.close();
        }
    }
}
