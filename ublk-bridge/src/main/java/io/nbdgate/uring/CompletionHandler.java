package io.nbdgate.uring;

/** Receives one completion; primitives only, so reaping allocates nothing. */
@FunctionalInterface
public interface CompletionHandler {
    void complete(long userData, int res, int flags);
}
