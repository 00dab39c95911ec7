package io.nbdgate.gateway.device;

import io.nbdgate.gateway.config.ProcessUser;
import io.nbdgate.uring.Errno;
import io.nbdgate.uring.LinuxCalls;
import io.netty.util.concurrent.EventExecutor;
import io.vertx.core.Vertx;
import io.vertx.core.internal.VertxInternal;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * What keeps a block device served from user space alive when memory runs out, which is exactly when the kernel
 * writes pages out through it (swap, dirty page cache): the queue threads are IO flushers (PR_SET_IO_FLUSHER:
 * their own allocations never wait for I/O, and writeback does not throttle them for the device they serve),
 * the OOM killer passes the process by (oom_score_adj), and its memory stays resident (mlockall, pages locked
 * as they are first touched). Each step that the process may not take (not root) is logged once and skipped.
 */
public final class MemoryGuard {
    private static final Logger LOG = LoggerFactory.getLogger(MemoryGuard.class);

    private MemoryGuard() {
    }

    /**
     * Applies the guard to this process and makes the event-loop threads of {@code vertx} IO flushers;
     * {@code oomScoreAdj} in -1000..1000 (-1000: never chosen by the OOM killer), {@code lock} whether to
     * mlockall. Returns what it did, for the log.
     */
    public static List<String> apply(Vertx vertx, int oomScoreAdj, boolean lock) {
        List<String> done = new ArrayList<>();
        if (LinuxCalls.prctl(LinuxCalls.PR_GET_IO_FLUSHER, 0) == 1) {
            // Started through IoFlusherExec: the JVM's own threads (compilers, VM thread) have it too.
            done.add("every thread is an IO flusher");
        }
        int flushers = ioFlushers(vertx);
        if (flushers > 0) {
            done.add(flushers + " event-loop thread(s) are IO flushers");
        }
        try {
            Files.writeString(Path.of("/proc/self/oom_score_adj"), Integer.toString(oomScoreAdj));
            done.add("oom_score_adj " + oomScoreAdj);
        } catch (IOException e) {
            LOG.atLevel(missing()).log("oom_score_adj {}: {} (lowering it needs CAP_SYS_RESOURCE)", oomScoreAdj,
                    e.getMessage());
        }
        if (lock) {
            int r = LinuxCalls.mlockall(LinuxCalls.MCL_CURRENT | LinuxCalls.MCL_FUTURE | LinuxCalls.MCL_ONFAULT);
            if (r == 0) {
                done.add("memory locked");
            } else {
                LOG.atLevel(missing()).log("mlockall: {} (it needs CAP_IPC_LOCK or a large RLIMIT_MEMLOCK): memory may be swapped out",
                        Errno.name(-r));
            }
        }
        return done;
    }

    /**
     * PR_SET_IO_FLUSHER on every event-loop thread of {@code vertx} (it is per thread); returns how many took it.
     * A refusal (not root) is logged once.
     */
    public static int ioFlushers(Vertx vertx) {
        int flushers = 0;
        int refused = 0;
        for (EventExecutor loop : ((VertxInternal) vertx).nettyEventLoopGroup()) {
            try {
                int r = loop.submit(() -> LinuxCalls.prctl(LinuxCalls.PR_SET_IO_FLUSHER, 1)).get(10, TimeUnit.SECONDS);
                if (r == 0) {
                    flushers++;
                } else {
                    refused = r;
                }
            } catch (Exception e) {
                LOG.warn("PR_SET_IO_FLUSHER on {}: {}", loop, e.toString());
            }
        }
        if (refused != 0) {
            LOG.atLevel(missing()).log("PR_SET_IO_FLUSHER refused ({}; it needs CAP_SYS_RESOURCE): under memory "
                    + "pressure the event loops may wait for writeback through their own devices", Errno.name(-refused));
        }
        return flushers;
    }

    /**
     * How loudly to say that a protection could not be had: a WARN for root, who can act on it; for another user
     * (a rootless device, which the README says goes without them) an INFO.
     */
    private static org.slf4j.event.Level missing() {
        return ProcessUser.root() ? org.slf4j.event.Level.WARN : org.slf4j.event.Level.INFO;
    }
}
