package io.nbdgate.gateway.device;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.netty.channel.IoEventLoop;
import io.netty.channel.IoHandlerFactory;
import io.netty.channel.MultiThreadIoEventLoopGroup;
import io.netty.channel.uring.IoUringIoHandler;
import io.vertx.core.Vertx;
import io.vertx.core.VertxOptions;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;

/**
 * A quiet loop waits without an IORING_OP_TIMEOUT when nothing is scheduled, and still keeps its schedule. The
 * loop's ring is read in /proc/self/fdinfo: SqTail counts every SQE the loop ever queued. Each wake-up from
 * another thread re-arms the loop's eventfd read (one SQE); Netty's own loop queues a TIMEOUT on top of it for
 * every wait, which the same count shows (so the test would see Netty drop the habit).
 */
class QuietUringTransportTest {
    private static final int WAKE_UPS = 200;

    @Test
    void aQuietLoopQueuesOneSqePerWakeUpWhereNettysQueuesTwo() throws Exception {
        double netty = sqesPerWakeUp(IoUringIoHandler.newFactory());
        double quiet = sqesPerWakeUp(QuietUringTransport.ioHandlerFactory());
        assertTrue(netty >= 1.8, "Netty's loop queued " + netty + " SQEs per wake-up, not an eventfd read and a TIMEOUT");
        assertTrue(quiet <= 1.2, "the quiet loop queued " + quiet + " SQEs per wake-up, more than its eventfd read");
    }

    @Test
    void aTaskScheduledByTheLoopItselfStillRunsOnTime() throws Exception {
        MultiThreadIoEventLoopGroup group = new MultiThreadIoEventLoopGroup(1, QuietUringTransport.ioHandlerFactory());
        try {
            IoEventLoop loop = (IoEventLoop) group.next();
            CompletableFuture<Long> ran = new CompletableFuture<>();
            long start = System.nanoTime();
            // Scheduled on the loop's own thread: no wake-up from outside, only the wait's deadline brings it.
            loop.execute(() -> loop.schedule(() -> ran.complete(System.nanoTime()), 100, TimeUnit.MILLISECONDS));
            long ms = TimeUnit.NANOSECONDS.toMillis(ran.get(10, TimeUnit.SECONDS) - start);
            assertTrue(ms >= 100, "ran after " + ms + " ms");
        } finally {
            group.shutdownGracefully(0, 1, TimeUnit.SECONDS).sync();
        }
    }

    @Test
    void vertxOnTheQuietTransportHasIoUringLoops() throws Exception {
        Vertx vertx = QuietUringTransport.vertx(new VertxOptions().setEventLoopPoolSize(2));
        try {
            List<IoEventLoop> loops = EventLoops.of(vertx);
            assertEquals(2, loops.size());
            assertTrue(loops.stream().allMatch(QuietUringTransport::isUring));
        } finally {
            vertx.close().await();
        }
    }

    private static double sqesPerWakeUp(IoHandlerFactory factory) throws Exception {
        Set<String> before = uringFds();
        MultiThreadIoEventLoopGroup group = new MultiThreadIoEventLoopGroup(1, factory);
        try {
            IoEventLoop loop = (IoEventLoop) group.next();
            loop.submit(() -> { }).get(10, TimeUnit.SECONDS); // the loop runs and has its ring
            Set<String> fds = uringFds();
            fds.removeAll(before);
            assertEquals(1, fds.size(), "the loop's ring among " + fds);
            String fd = fds.iterator().next();
            Thread.sleep(50);
            long first = sqTail(fd);
            for (int i = 0; i < WAKE_UPS; i++) {
                loop.submit(() -> { }).get(10, TimeUnit.SECONDS);
                Thread.sleep(2); // the loop goes back to its wait before the next wake-up
            }
            return (double) (sqTail(fd) - first) / WAKE_UPS;
        } finally {
            group.shutdownGracefully(0, 1, TimeUnit.SECONDS).sync();
        }
    }

    private static Set<String> uringFds() throws IOException {
        Set<String> fds = new HashSet<>();
        try (Stream<Path> s = Files.list(Path.of("/proc/self/fd"))) {
            for (Path p : (Iterable<Path>) s::iterator) {
                try {
                    if (Files.readSymbolicLink(p).toString().equals("anon_inode:[io_uring]")) {
                        fds.add(p.getFileName().toString());
                    }
                } catch (IOException gone) {
                    // closed while listing
                }
            }
        }
        return fds;
    }

    private static long sqTail(String fd) throws IOException {
        for (String line : Files.readAllLines(Path.of("/proc/self/fdinfo", fd))) {
            if (line.startsWith("SqTail:")) {
                return Long.parseLong(line.substring(7).trim());
            }
        }
        throw new IOException("no SqTail in /proc/self/fdinfo/" + fd);
    }
}
