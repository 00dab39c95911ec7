package io.nbdgate.gateway.session;

import io.nbdgate.protocol.ExportInfo;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.function.LongConsumer;

/**
 * The export a queue's device was made from, held against every later handshake: the first link sets it, a
 * resize moves its size, and a reconnect must find an export that can carry on ({@link ExportCheck}). Also
 * the two size-related parties: callers waiting for a renewed link (a resize reconnects so the server checks
 * requests against the new size) and the listener told when a reconnect finds the export larger. Loop thread
 * only, except {@link #onGrowth}.
 */
final class ExportWatch {
    private ExportInfo export;
    private volatile LongConsumer onGrowth;
    private final List<CompletableFuture<Void>> renewals = new ArrayList<>();

    /** The export as the first link found it, with the size of the last resize; null before the first link. */
    ExportInfo export() {
        return export;
    }

    boolean known() {
        return export != null;
    }

    void first(ExportInfo info) {
        export = info;
    }

    /** Null if {@code info}, a reconnect's export, can serve the device; else why not, in one line. */
    String incompatibility(ExportInfo info) {
        return ExportCheck.incompatibility(export, info);
    }

    /** A reconnect found {@code info}: tells the growth listener if the export is now larger than the device. */
    void reconnected(ExportInfo info) {
        LongConsumer grew = onGrowth;
        if (grew != null && info.size() > export.size()) {
            grew.accept(info.size());
        }
    }

    void onGrowth(LongConsumer c) {
        onGrowth = c;
    }

    void resized(long bytes) {
        export = export.withSize(bytes);
    }

    /** {@code done} completes when the next link is READY, or fails when none will be. */
    void awaitRenewal(CompletableFuture<Void> done) {
        renewals.add(done);
    }

    void renewed(Throwable failure) {
        List<CompletableFuture<Void>> all = new ArrayList<>(renewals);
        renewals.clear();
        for (CompletableFuture<Void> f : all) {
            if (failure == null) {
                f.complete(null);
            } else {
                f.completeExceptionally(failure);
            }
        }
    }
}
