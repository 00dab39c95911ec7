package io.nbdgate.gateway.session;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.nbdgate.gateway.config.DeviceConfig;
import io.nbdgate.gateway.link.Request;
import io.nbdgate.gateway.testsupport.ExternalNbdServer;
import io.nbdgate.gateway.testsupport.SessionHarness;
import io.nbdgate.protocol.Command;
import io.nbdgate.protocol.client.HandshakeConfig;
import java.lang.foreign.MemorySegment;
import java.lang.management.ManagementFactory;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The steady-state data path allocates on its event loop only the one object per ring operation that Netty's
 * submit API takes (an {@code IoUringIoOps}, 64 bytes): tens of thousands of reads, writes and flushes of the
 * sizes a device sees, at queue depth 32, through a link to nbdkit over TCP, and the loop thread's allocated bytes
 * (ThreadMXBean) stay within 64 bytes per ring operation plus {@link #SLACK_PER_REQUEST} per request. Any object
 * made per request or per reply would exceed it. Garbage there means collections, which a daemon with a fixed
 * 32 MiB heap and devices under memory pressure should rarely need.
 */
class DataPathAllocationTest {
    /** An IoUringIoOps: a 12-byte header and 50 bytes of fields, aligned to 8. */
    static final int OPS_BYTES = 64;
    /**
     * The loop's amortized bookkeeping (its task queues' chunks, this driver's included): 6 bytes per request
     * measured when C2 had removed the IoUringIoOps allocations altogether; below the smallest object (16 bytes).
     */
    static final double SLACK_PER_REQUEST = 12;
    private static final int DEPTH = 32;
    private static final int MAX_LENGTH = 256 << 10;
    private static final Command[] COMMANDS = {Command.READ, Command.WRITE, Command.READ, Command.WRITE,
            Command.READ, Command.WRITE, Command.READ, Command.FLUSH};
    private static final int[] LENGTHS = {4096, 4096, 4096, 65536, 65536, 4096, MAX_LENGTH, 0};
    private static final long EXPORT_SIZE = 64L << 20;

    @TempDir
    Path dir;

    private final SessionHarness h;
    private MemorySegment buffers;
    private final Runnable[] resubmit = new Runnable[DEPTH];
    private int submitted;
    private int completed;
    private int target;
    private int failures;
    private CompletableFuture<Void> done;

    DataPathAllocationTest() throws Exception {
        h = new SessionHarness();
    }

    @AfterEach
    void tearDown() throws Exception {
        h.close();
    }

    @Test
    void theLoopAllocatesNothingPerRequest() throws Exception {
        ExternalNbdServer server = h.serving(ExternalNbdServer.nbdkit(dir, List.of(), "memory", "64M"));
        buffers = h.arena.allocate((long) DEPTH * MAX_LENGTH, 4096);
        for (int t = 0; t < DEPTH; t++) {
            int tag = t;
            // Checked again when the task runs: two completions of one pass may both have seen the last slot free.
            resubmit[t] = () -> {
                if (submitted < target) {
                    submit(tag);
                }
            };
        }
        h.openDriven(server.socketAddress(), HandshakeConfig.go(""), DEPTH,
                h.linkOptions(Duration.ofSeconds(10), Duration.ofSeconds(30), DeviceConfig.DEFAULT_STAGE_READS_MAX),
                ReconnectPolicy.of(Duration.ofMinutes(1)), this::completed).get(20, TimeUnit.SECONDS);
        long loopThread = h.onLoop(() -> Thread.currentThread().threadId());
        com.sun.management.ThreadMXBean threads = (com.sun.management.ThreadMXBean) ManagementFactory.getThreadMXBean();

        run(50_000); // warm-up: the JIT, the link's lazily made parts, Netty's queues at their size
        long opsBefore = h.link(l -> l.counters().ringOperations());
        long before = threads.getThreadAllocatedBytes(loopThread);
        int measured = 40_000;
        run(measured);
        long bytes = threads.getThreadAllocatedBytes(loopThread) - before;
        long ops = h.link(l -> l.counters().ringOperations()) - opsBefore;

        assertEquals(0, failures, "requests failed");
        double bound = ops * OPS_BYTES + measured * SLACK_PER_REQUEST;
        System.out.printf("[allocation] loop: %d bytes, %d requests, %d ring operations: %.1f bytes per request, "
                + "%.1f per operation%n", bytes, measured, ops, (double) bytes / measured, (double) bytes / ops);
        assertTrue(bytes <= bound, String.format("the event loop allocated %d bytes for %d requests (%.1f per request)"
                + " and %d ring operations: more than %d per operation and %.0f per request", bytes, measured,
                (double) bytes / measured, ops, OPS_BYTES, SLACK_PER_REQUEST));
    }

    /** Runs {@code n} requests at queue depth 32 and waits for them. */
    private void run(int n) throws Exception {
        CompletableFuture<Void> d = new CompletableFuture<>();
        h.onLoop(() -> {
            done = d;
            submitted = 0;
            completed = 0;
            target = n;
            for (int tag = 0; tag < DEPTH; tag++) {
                submit(tag);
            }
            return null;
        });
        d.get(120, TimeUnit.SECONDS);
    }

    private void submit(int tag) {
        int shape = submitted++ % COMMANDS.length;
        int length = LENGTHS[shape];
        long offset = length == 0 ? 0 : Math.floorMod((long) submitted * 7919 * length, EXPORT_SIZE - length)
                / length * length;
        h.submitNow(tag, COMMANDS[shape], 0, offset, length, length == 0 ? 0 : buffers.address() + (long) tag * MAX_LENGTH);
    }

    /** On the loop: the next request on this tag goes out from a task, as ublk hands over the next one later. */
    private void completed(Request r) {
        if (r.result() < 0) {
            failures++;
        }
        if (++completed == target) {
            done.complete(null);
        } else if (submitted < target) {
            h.loop.execute(resubmit[r.tag()]);
        }
    }
}
