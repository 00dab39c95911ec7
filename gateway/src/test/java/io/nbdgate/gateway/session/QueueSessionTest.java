package io.nbdgate.gateway.session;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.nbdgate.gateway.config.DeviceConfig;
import io.nbdgate.gateway.link.DataPathStats;
import io.nbdgate.gateway.link.Link;
import io.nbdgate.gateway.link.NbdConnectionException;
import io.nbdgate.gateway.link.RecvFixedProbe;
import io.nbdgate.gateway.testsupport.ExternalNbdServer;
import io.nbdgate.gateway.testsupport.SessionHarness;
import io.nbdgate.protocol.Command;
import io.nbdgate.protocol.CommandFlag;
import io.nbdgate.protocol.client.HandshakeConfig;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.net.UnixDomainSocketAddress;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** A queue session and its links against a real nbdkit, in copy mode (request data in Java memory). */
class QueueSessionTest {
    private static final int EIO = 5;

    @TempDir
    Path dir;

    private SessionHarness h;
    private ExternalNbdServer server;
    private Arena arena;
    private QueueSession conn;

    @BeforeEach
    void setUp() throws Exception {
        h = new SessionHarness();
        arena = h.arena;
    }

    @AfterEach
    void tearDown() throws Exception {
        h.close();
        assertEquals(0, h.strayCompletions.get(), "a request completed twice");
    }

    private Path startNbdkit(List<String> options, String plugin, String... params) throws IOException {
        server = h.serving(ExternalNbdServer.nbdkitUnix(dir, options, plugin, params));
        return Path.of(server.uri().socketPath());
    }

    private QueueSession connect(Path sock, int depth, Duration ioTimeout) throws Exception {
        return connect(sock, depth, ioTimeout, ReconnectPolicy.of(Duration.ofMinutes(5)));
    }

    private QueueSession connect(Path sock, int depth, Duration ioTimeout, ReconnectPolicy policy) throws Exception {
        return h.open(UnixDomainSocketAddress.of(sock), HandshakeConfig.go(""), depth, ioTimeout,
                DeviceConfig.DEFAULT_STAGE_READS_MAX, policy);
    }

    private CompletableFuture<QueueSession> connecting(Path sock, int depth, Duration connectTimeout,
                                                       Duration ioTimeout) {
        return h.opening(UnixDomainSocketAddress.of(sock), HandshakeConfig.go(""), depth,
                h.linkOptions(connectTimeout, ioTimeout, DeviceConfig.DEFAULT_STAGE_READS_MAX),
                ReconnectPolicy.of(Duration.ofMinutes(5)));
    }

    /**
     * Whether the loop holds a scheduled task. Netty's io_uring loop adds an IORING_OP_TIMEOUT to every wait
     * while it does, so the data path keeps its timers elsewhere (TimeoutTicker).
     */
    private boolean loopHasScheduledTask() throws Exception {
        java.lang.reflect.Method next = io.netty.util.concurrent.AbstractScheduledEventExecutor.class
                .getDeclaredMethod("nextScheduledTaskDeadlineNanos");
        next.setAccessible(true);
        return h.onLoop(() -> (long) next.invoke(h.loop) != -1);
    }

    private CompletableFuture<Integer> submit(int tag, Command cmd, int flags, long offset, long length,
                                              MemorySegment buf) {
        return h.submit(tag, cmd, flags, offset, length, buf);
    }

    private static int get(CompletableFuture<Integer> f) throws Exception {
        return f.get(10, TimeUnit.SECONDS);
    }

    @Test
    void parallelWritesAndReadsRoundTripExactly() throws Exception {
        conn = connect(startNbdkit(List.of(), "memory", "64M"), 32, Duration.ofSeconds(10));
        assertEquals(64L << 20, conn.export().size());
        int n = 32;
        int size = 128 << 10;
        Random random = new Random(42);
        byte[][] expected = new byte[n][size];
        List<CompletableFuture<Integer>> writes = new ArrayList<>();
        for (int t = 0; t < n; t++) {
            random.nextBytes(expected[t]);
            MemorySegment src = arena.allocate(size);
            MemorySegment.copy(expected[t], 0, src, ValueLayout.JAVA_BYTE, 0, size);
            writes.add(submit(t, Command.WRITE, t % 2 == 0 ? CommandFlag.FUA : 0, (long) t * size * 2, size, src));
        }
        for (CompletableFuture<Integer> w : writes) {
            assertEquals(size, get(w));
        }
        MemorySegment[] dst = new MemorySegment[n];
        List<CompletableFuture<Integer>> reads = new ArrayList<>();
        for (int t = 0; t < n; t++) {
            dst[t] = arena.allocate(size);
            dst[t].fill((byte) 0x5a);
            reads.add(submit(t, Command.READ, 0, (long) t * size * 2, size, dst[t]));
        }
        for (int t = 0; t < n; t++) {
            assertEquals(size, get(reads.get(t)));
            assertArrayEquals(expected[t], dst[t].toArray(ValueLayout.JAVA_BYTE), "tag " + t);
        }
        assertEquals(0, get(submit(0, Command.FLUSH, 0, 0, 0, null)));
    }

    /** Requests submitted in one pass of the loop (one batch of ublk completions) leave in one send chain. */
    @Test
    void repliesUseTheRegisteredReplyBufferWhereTheKernelCan() throws Exception {
        // Small reads: their data arrives with the headers in rx and is staged from there.
        conn = connect(startNbdkit(List.of(), "memory", "16M"), 16, Duration.ofSeconds(10));
        boolean recvFixed = RecvFixedProbe.run(h.loop).get(10, TimeUnit.SECONDS);
        long before = DataPathStats.fixedRxBytes();
        Random random = new Random(7);
        for (int round = 0; round < 3; round++) {
            byte[][] expected = new byte[16][4096];
            List<CompletableFuture<Integer>> writes = new ArrayList<>();
            for (int t = 0; t < 16; t++) {
                random.nextBytes(expected[t]);
                writes.add(submit(t, Command.WRITE, 0, t * 8192L, 4096, arena.allocateFrom(ValueLayout.JAVA_BYTE, expected[t])));
            }
            for (CompletableFuture<Integer> w : writes) {
                assertEquals(4096, get(w));
            }
            MemorySegment[] dst = new MemorySegment[16];
            List<CompletableFuture<Integer>> reads = new ArrayList<>();
            for (int t = 0; t < 16; t++) {
                dst[t] = arena.allocate(4096);
                reads.add(submit(t, Command.READ, 0, t * 8192L, 4096, dst[t]));
            }
            for (int t = 0; t < 16; t++) {
                assertEquals(4096, get(reads.get(t)));
                assertArrayEquals(expected[t], dst[t].toArray(ValueLayout.JAVA_BYTE), "round " + round + " tag " + t);
            }
        }
        long fixedRx = h.link(l -> l.counters().fixedRxBytes());
        // 16 x 3 write replies (16 bytes or more each) and 48 x 4 KiB of read data, all through rx.
        long atLeast = recvFixed ? 48 * 4096L : 0;
        assertTrue(recvFixed ? fixedRx >= atLeast : fixedRx == 0,
                "RECV into fixed buffers " + (recvFixed ? "works" : "is refused") + " here, but " + fixedRx
                        + " reply bytes went into the registered rx");
        assertEquals(fixedRx, DataPathStats.fixedRxBytes() - before);
        assertTrue(conn.connected());
    }

    @Test
    void requestsSubmittedTogetherLeaveInOneSendChain() throws Exception {
        conn = connect(startNbdkit(List.of(), "memory", "64M"), 32, Duration.ofSeconds(10));
        MemorySegment buf = arena.allocate(8 * 4096, 4096);
        List<CompletableFuture<Integer>> reads = new ArrayList<>();
        for (int t = 0; t < 8; t++) {
            reads.add(h.expect(t));
        }
        long before = h.link(l -> l.counters().sendChains());
        h.loop.execute(() -> {
            for (int t = 0; t < 8; t++) {
                h.submitNow(t, Command.READ, 0, (long) t * 4096, 4096, buf.asSlice((long) t * 4096, 4096));
            }
        });
        for (CompletableFuture<Integer> r : reads) {
            assertEquals(4096, get(r));
        }
        long chains = h.link(l -> l.counters().sendChains()) - before;
        assertEquals(1, chains, "8 READs submitted together went out in " + chains + " send chains");
    }

    @Test
    void trimAndWriteZeroesReadBackAsZeroes() throws Exception {
        conn = connect(startNbdkit(List.of(), "memory", "16M"), 4, Duration.ofSeconds(10));
        MemorySegment buf = arena.allocate(1 << 20);
        buf.fill((byte) 0x77);
        assertEquals(1 << 20, get(submit(0, Command.WRITE, 0, 0, 1 << 20, buf)));
        assertEquals(1 << 20, get(submit(1, Command.WRITE, 0, 1 << 20, 1 << 20, buf)));
        assertEquals(0, get(submit(0, Command.TRIM, 0, 0, 1 << 20, null)));
        assertEquals(0, get(submit(1, Command.WRITE_ZEROES, CommandFlag.NO_HOLE, 1 << 20, 4096, null)));
        MemorySegment back = arena.allocate(1 << 20);
        assertEquals(1 << 20, get(submit(2, Command.READ, 0, 1 << 20, 1 << 20, back)));
        for (int i = 0; i < 4096; i++) {
            assertEquals(0, back.get(ValueLayout.JAVA_BYTE, i), "byte " + i + " after WRITE_ZEROES");
        }
        assertEquals(0x77, back.get(ValueLayout.JAVA_BYTE, 4096));
        // nbdkit's memory plugin really punches the trimmed range.
        assertEquals(1 << 20, get(submit(3, Command.READ, 0, 0, 1 << 20, back)));
        assertEquals(0, back.get(ValueLayout.JAVA_BYTE, 0));
    }

    @Test
    void serverErrorsBecomeErrnosAndTheConnectionStaysUsable() throws Exception {
        // The error filter fails every read with EIO; writes keep working.
        conn = connect(startNbdkit(List.of("--filter=error"), "memory", "16M", "error-pread=EIO", "error-pread-rate=100%"), 4,
                Duration.ofSeconds(10));
        MemorySegment buf = arena.allocate(4096);
        assertEquals(-EIO, get(submit(0, Command.READ, 0, 0, 4096, buf)));
        assertEquals(4096, get(submit(1, Command.WRITE, 0, 0, 4096, buf)));
        assertTrue(conn.connected());
    }

    /** nbdkit's file plugin on {@code file} at the test's socket, replacing a killed one (its socket file stays). */
    private Path restartNbdkit(List<String> options, Path file, String... filterParams) throws IOException {
        Files.deleteIfExists(dir.resolve("nbdkit.sock"));
        List<String> params = new ArrayList<>(List.of("file=" + file));
        params.addAll(List.of(filterParams));
        return startNbdkit(options, "file", params.toArray(String[]::new));
    }

    private Path diskFile(long size) throws IOException {
        Path file = dir.resolve("disk.img");
        try (var raf = new java.io.RandomAccessFile(file.toFile(), "rw")) {
            raf.setLength(size);
        }
        return file;
    }

    private static MemorySegment pattern(Arena arena, int size, long seed) {
        byte[] bytes = new byte[size];
        new Random(seed).nextBytes(bytes);
        return arena.allocateFrom(ValueLayout.JAVA_BYTE, bytes);
    }

    private static void assertPending(CompletableFuture<Integer> f, String why) throws Exception {
        Thread.sleep(500);
        assertTrue(!f.isDone(), why + ", but it completed with " + f.getNow(null));
    }

    private void awaitState(LinkStatus.State want) throws Exception {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(15);
        while (conn.status().state() != want) {
            assertTrue(System.nanoTime() < deadline, "state " + conn.status() + ", waited for " + want);
            Thread.sleep(20);
        }
    }

    @Test
    void killedServerMeansTheRequestWaitsAndIsResentToTheRestartedServer() throws Exception {
        Path file = diskFile(16 << 20);
        // Reads take a minute on this server: the READ is in flight when it dies.
        Path sock = restartNbdkit(List.of("--filter=delay"), file, "rdelay=60");
        conn = connect(sock, 4, Duration.ofSeconds(30));
        MemorySegment written = pattern(arena, 64 << 10, 1);
        assertEquals(64 << 10, get(submit(1, Command.WRITE, 0, 0, 64 << 10, written)));
        MemorySegment back = arena.allocate(64 << 10);
        CompletableFuture<Integer> read = submit(0, Command.READ, 0, 0, 64 << 10, back);
        Thread.sleep(300);
        server.kill();
        awaitState(LinkStatus.State.RECONNECTING);
        assertPending(read, "a request must wait while the server is away");
        String error = conn.status().lastError();
        assertTrue(error.contains("closed") || error.contains("ECONNREFUSED"), conn.status().toString());
        restartNbdkit(List.of(), file);
        assertEquals(64 << 10, get(read));
        assertArrayEquals(written.toArray(ValueLayout.JAVA_BYTE), back.toArray(ValueLayout.JAVA_BYTE));
        LinkStatus s = conn.status();
        assertEquals(LinkStatus.State.CONNECTED, s.state(), s.toString());
        assertEquals(1, s.reconnects(), s.toString());
        assertEquals(1, s.resent(), "the unanswered READ, and nothing acknowledged: " + s);
    }

    @Test
    void requestsWaitingAtTheRestartGoOutInTheirOrder() throws Exception {
        Path file = diskFile(16 << 20);
        // One server thread: requests run in the order they arrive, so the wire order shows in the data.
        List<String> serial = List.of("--threads=1");
        Path sock = restartNbdkit(serial, file);
        conn = connect(sock, 8, Duration.ofSeconds(30));
        server.kill();
        awaitState(LinkStatus.State.RECONNECTING);
        // Two WRITEs to one block while no link exists: the later must win, so they must go out in order.
        MemorySegment first = pattern(arena, 4096, 2);
        MemorySegment second = pattern(arena, 4096, 3);
        List<CompletableFuture<Integer>> writes = new ArrayList<>();
        for (int round = 0; round < 3; round++) {
            writes.add(submit(2 * round, Command.WRITE, 0, round * 8192L, 4096, first));
            writes.add(submit(2 * round + 1, Command.WRITE, 0, round * 8192L, 4096, second));
        }
        assertPending(writes.getFirst(), "no server, no completion");
        restartNbdkit(serial, file);
        for (CompletableFuture<Integer> w : writes) {
            assertEquals(4096, get(w));
        }
        for (int round = 0; round < 3; round++) {
            MemorySegment back = arena.allocate(4096);
            assertEquals(4096, get(submit(7, Command.READ, 0, round * 8192L, 4096, back)));
            assertArrayEquals(second.toArray(ValueLayout.JAVA_BYTE), back.toArray(ValueLayout.JAVA_BYTE));
        }
    }

    @Test
    void pastTheReconnectTimeoutIoFailsWithEioAndWorksAgainOnceTheServerIsBack() throws Exception {
        Path file = diskFile(16 << 20);
        Path sock = restartNbdkit(List.of(), file);
        conn = connect(sock, 4, Duration.ofSeconds(30), ReconnectPolicy.of(Duration.ofMillis(1500)));
        server.kill();
        awaitState(LinkStatus.State.RECONNECTING);
        long t0 = System.nanoTime();
        CompletableFuture<Integer> read = submit(0, Command.READ, 0, 0, 4096, arena.allocate(4096));
        assertEquals(-EIO, read.get(20, TimeUnit.SECONDS));
        long ms = TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - t0);
        assertTrue(ms < 6000, "EIO after " + ms + " ms; the reconnect timeout is 1500 ms");
        assertEquals(LinkStatus.State.FAILED, conn.status().state());
        // Now new requests fail at once, until the server is back.
        long t1 = System.nanoTime();
        assertEquals(-EIO, get(submit(1, Command.READ, 0, 0, 4096, arena.allocate(4096))));
        assertTrue(TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - t1) < 1000);
        restartNbdkit(List.of(), file);
        awaitState(LinkStatus.State.CONNECTED);
        assertEquals(4096, get(submit(2, Command.READ, 0, 0, 4096, arena.allocate(4096))));
    }

    @Test
    void unansweredRequestEndsTheLinkNotTheRequest() throws Exception {
        Path file = diskFile(16 << 20);
        Path sock = restartNbdkit(List.of("--filter=delay"), file, "rdelay=60");
        conn = connect(sock, 4, Duration.ofMillis(800));
        CompletableFuture<Integer> read = submit(0, Command.READ, 0, 0, 4096, arena.allocate(4096));
        assertTrue(!loopHasScheduledTask(), "the I/O timeout check sits on the loop's schedule");
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
        while (conn.status().reconnects() == 0) {
            assertTrue(System.nanoTime() < deadline, "no reconnect after the I/O timeout: " + conn.status());
            Thread.sleep(20);
        }
        assertTrue(conn.status().lastError().contains("no reply"), conn.status().toString());
        assertTrue(!read.isDone(), "the request outlives its link");
        server.kill();
        restartNbdkit(List.of(), file);
        assertEquals(4096, get(read));
    }

    @Test
    void aServerThatReconnectsButNeverAnswersFailsIoAfterTheReconnectTimeout() throws Exception {
        Path file = diskFile(16 << 20);
        Path sock = restartNbdkit(List.of("--filter=delay"), file, "rdelay=60");
        conn = connect(sock, 4, Duration.ofMillis(500), ReconnectPolicy.of(Duration.ofSeconds(2)));
        long t0 = System.nanoTime();
        CompletableFuture<Integer> read = submit(0, Command.READ, 0, 0, 4096, arena.allocate(4096));
        assertEquals(-EIO, read.get(20, TimeUnit.SECONDS));
        long ms = TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - t0);
        assertTrue(ms >= 2000 && ms < 8000, "EIO after " + ms + " ms: io-timeout 500 ms, reconnect-timeout 2 s");
        assertTrue(conn.status().reconnects() >= 1, conn.status().toString());
    }

    @Test
    void aSecondQueueWaitsWhileTheServerNoLongerAllowsSeveralConnections() throws Exception {
        Path file = diskFile(16 << 20);
        Path sock = restartNbdkit(List.of(), file);
        conn = h.opening(UnixDomainSocketAddress.of(sock), HandshakeConfig.go(""), 4,
                h.linkOptions(Duration.ofSeconds(5), Duration.ofSeconds(30), DeviceConfig.DEFAULT_STAGE_READS_MAX),
                ReconnectPolicy.of(Duration.ofMinutes(5)), true).get(20, TimeUnit.SECONDS);
        assertTrue(conn.export().canMultiConn(), "nbdkit's file plugin allows several connections");
        server.kill();
        awaitState(LinkStatus.State.RECONNECTING);
        CompletableFuture<Integer> read = submit(0, Command.READ, 0, 0, 4096, arena.allocate(4096));
        restartNbdkit(List.of("--filter=multi-conn"), file, "multi-conn-mode=disable");
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
        while (conn.status().lastError() == null || !conn.status().lastError().contains("CAN_MULTI_CONN")) {
            assertTrue(System.nanoTime() < deadline, "no attempt met the server without multi-conn: " + conn.status());
            Thread.sleep(20);
        }
        assertPending(read, "a second connection to a server without multi-conn could reorder writes: it waits");
        assertEquals(LinkStatus.State.RECONNECTING, conn.status().state());
        server.kill();
        restartNbdkit(List.of(), file);
        assertEquals(4096, get(read));
    }

    @Test
    void gracefulServerShutdownResendsWhatItDidNotAnswer() throws Exception {
        Path file = diskFile(16 << 20);
        Path sock = restartNbdkit(List.of("--filter=delay"), file, "rdelay=60");
        conn = connect(sock, 4, Duration.ofSeconds(30));
        CompletableFuture<Integer> read = submit(0, Command.READ, 0, 0, 4096, arena.allocate(4096));
        Thread.sleep(300);
        server.close(); // SIGTERM: nbdkit answers what is in flight with ESHUTDOWN, then closes
        restartNbdkit(List.of(), file);
        assertEquals(4096, get(read));
    }

    @Test
    void anExportThatComesBackSmallerFailsIoWithEioAndSaysWhy() throws Exception {
        Path file = diskFile(16 << 20);
        Path sock = restartNbdkit(List.of(), file);
        conn = connect(sock, 4, Duration.ofSeconds(30));
        server.kill();
        awaitState(LinkStatus.State.RECONNECTING);
        try (var raf = new java.io.RandomAccessFile(file.toFile(), "rw")) {
            raf.setLength(8 << 20);
        }
        CompletableFuture<Integer> write = submit(0, Command.WRITE, 0, 12 << 20, 4096, pattern(arena, 4096, 4));
        restartNbdkit(List.of(), file);
        assertEquals(-EIO, get(write));
        assertEquals(LinkStatus.State.FAILED, conn.status().state());
        assertTrue(conn.status().lastError().contains("shrank from 16777216 to 8388608"), conn.status().toString());
        assertEquals(8L << 20, Files.size(file), "nothing was written past the new end");
    }

    @Test
    void silentServerTimesOutTheHandshakeWithoutTheLoopsSchedule() throws Exception {
        // A server that accepts and never says a word: the handshake must end at the connect timeout.
        Path sock = dir.resolve("silent.sock");
        try (java.nio.channels.ServerSocketChannel silent = java.nio.channels.ServerSocketChannel
                .open(java.net.StandardProtocolFamily.UNIX)) {
            silent.bind(UnixDomainSocketAddress.of(sock));
            long t0 = System.nanoTime();
            CompletableFuture<QueueSession> c = connecting(sock, 4, Duration.ofMillis(600), Duration.ofSeconds(30));
            assertTrue(!loopHasScheduledTask(), "the connect timeout sits on the loop's schedule");
            ExecutionException e = org.junit.jupiter.api.Assertions.assertThrows(ExecutionException.class,
                    () -> c.get(10, TimeUnit.SECONDS));
            long ms = TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - t0);
            assertTrue(e.getCause() instanceof NbdConnectionException, e.toString());
            assertTrue(e.getCause().getMessage().contains("timed out after 600 ms"), e.getCause().getMessage());
            assertTrue(ms >= 500 && ms < 5000, "timed out after " + ms + " ms");
        }
    }

    @Test
    void refusedConnectionIsOneClearLine() {
        ExecutionException e = org.junit.jupiter.api.Assertions.assertThrows(ExecutionException.class,
                () -> connect(dir.resolve("nobody-listens.sock"), 4, Duration.ofSeconds(1)));
        assertTrue(e.getCause() instanceof NbdConnectionException, e.toString());
        assertTrue(e.getCause().getMessage().startsWith("cannot connect to unix:"), e.getCause().getMessage());
        assertTrue(e.getCause().getMessage().contains("ENOENT"), e.getCause().getMessage());
    }
}
