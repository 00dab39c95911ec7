package io.nbdgate.gateway.testsupport;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.concurrent.TimeUnit;

/** Short system commands (ip, tc, ss) for the test bed: bounded in time, failures say what ran and what it printed. */
public final class HostCommand {
    private static final long TIMEOUT_SECONDS = 60;

    private HostCommand() {
    }

    public record Result(int exit, String output) {
    }

    /** Runs to completion (at most a minute); merged output. */
    public static Result exec(List<String> cmd) {
        try {
            Process p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
            // Read on another thread so a command that never ends cannot block us past the timeout.
            var out = java.util.concurrent.CompletableFuture.supplyAsync(() -> {
                try {
                    return new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
                } catch (IOException e) {
                    return "(output lost: " + e.getMessage() + ")";
                }
            });
            if (!p.waitFor(TIMEOUT_SECONDS, TimeUnit.SECONDS)) {
                p.destroyForcibly();
                throw new IllegalStateException(String.join(" ", cmd) + " did not finish in " + TIMEOUT_SECONDS + " s");
            }
            return new Result(p.exitValue(), out.get(10, TimeUnit.SECONDS));
        } catch (IOException | java.util.concurrent.ExecutionException | java.util.concurrent.TimeoutException e) {
            throw new IllegalStateException("running " + String.join(" ", cmd) + ": " + e, e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException("interrupted while running " + String.join(" ", cmd), e);
        }
    }

    public static Result exec(String... cmd) {
        return exec(List.of(cmd));
    }

    /** Runs and returns the output; a non-zero exit is an IllegalStateException with that output. */
    public static String run(String... cmd) {
        Result r = exec(cmd);
        if (r.exit() != 0) {
            throw new IllegalStateException(String.join(" ", cmd) + " exited " + r.exit() + ": " + r.output().strip());
        }
        return r.output();
    }
}
