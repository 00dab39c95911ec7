package io.nbdgate.gateway.datapath;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import io.netty.channel.IoEventLoop;
import io.netty.channel.MultiThreadIoEventLoopGroup;
import io.netty.channel.uring.IoUringIoHandler;
import io.nbdgate.gateway.config.DeviceConfig;
import io.nbdgate.protocol.Command;
import io.nbdgate.protocol.CommandFlag;
import io.nbdgate.gateway.testsupport.ExternalNbdServer;
import io.nbdgate.protocol.client.HandshakeConfig;
import io.nbdgate.uring.LinuxCalls;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.net.UnixDomainSocketAddress;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The io_uring NBD connection against a real nbdkit, in copy mode (request data in Java memory). */
class NbdRingConnectionTest {
    private static final int EIO = 5;
    private static final int ESHUTDOWN = 108;

    @TempDir
    Path dir;

    private MultiThreadIoEventLoopGroup group;
    private IoEventLoop loop;
    private ExternalNbdServer server;
    private Arena arena;
    private int zeroFd;
    private final ConcurrentHashMap<Integer, CompletableFuture<Integer>> pending = new ConcurrentHashMap<>();
    private final CompletableFuture<String> lost = new CompletableFuture<>();
    private NbdRingConnection conn;

    @BeforeEach
    void setUp() throws Exception {
        group = new MultiThreadIoEventLoopGroup(1, IoUringIoHandler.newFactory());
        loop = (IoEventLoop) group.next();
        arena = Arena.ofShared();
        zeroFd = LinuxCalls.open("/dev/zero", LinuxCalls.O_RDONLY, 0);
    }

    @AfterEach
    void tearDown() throws Exception {
        if (conn != null) {
            conn.close("test over").get(10, TimeUnit.SECONDS);
        }
        group.shutdownGracefully(0, 1, TimeUnit.SECONDS).sync();
        if (server != null) {
            server.close();
        }
        LinuxCalls.close(zeroFd);
        arena.close();
    }

    private Path startNbdkit(List<String> options, String plugin, String... params) throws IOException {
        server = ExternalNbdServer.nbdkitUnix(dir, options, plugin, params);
        return Path.of(server.uri().socketPath());
    }

    private NbdRingConnection connect(Path sock, int depth, Duration ioTimeout) throws Exception {
        return connecting(sock, depth, Duration.ofSeconds(5), ioTimeout).get(10, TimeUnit.SECONDS);
    }

    private CompletableFuture<NbdRingConnection> connecting(Path sock, int depth, Duration connectTimeout,
                                                            Duration ioTimeout) {
        NbdRingConnection.Listener listener = new NbdRingConnection.Listener() {
            @Override
            public void completed(int tag, int result) {
                pending.remove(tag).complete(result);
            }

            @Override
            public void lost(String reason) {
                lost.complete(reason);
            }
        };
        return NbdRingConnection.connect(loop, UnixDomainSocketAddress.of(sock), HandshakeConfig.go(""), depth,
                connectTimeout, ioTimeout, zeroFd, DeviceConfig.DEFAULT_SEND_ZC_MIN, DeviceConfig.DEFAULT_STAGE_READS_MAX, listener);
    }

    /**
     * Whether the loop holds a scheduled task. Netty's io_uring loop adds an IORING_OP_TIMEOUT to every wait
     * while it does, so the data path keeps its timers elsewhere (TimeoutTicker).
     */
    private boolean loopHasScheduledTask() throws Exception {
        java.lang.reflect.Method next = io.netty.util.concurrent.AbstractScheduledEventExecutor.class
                .getDeclaredMethod("nextScheduledTaskDeadlineNanos");
        next.setAccessible(true);
        return loop.submit(() -> (long) next.invoke(loop) != -1).get(10, TimeUnit.SECONDS);
    }

    private CompletableFuture<Integer> submit(int tag, Command cmd, int flags, long offset, long length,
                                              MemorySegment buf) {
        CompletableFuture<Integer> f = new CompletableFuture<>();
        pending.put(tag, f);
        loop.execute(() -> conn.submit(tag, cmd, flags, offset, length, -1, buf == null ? 0 : buf.address()));
        return f;
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
        boolean recvFixed = RecvFixedProbe.run(loop).get(10, TimeUnit.SECONDS);
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
        long fixedRx = loop.submit(conn::fixedRxBytes).get(10, TimeUnit.SECONDS);
        // 16 x 3 write replies (16 bytes or more each) and 48 x 4 KiB of read data, all through rx.
        long atLeast = recvFixed ? 48 * 4096L : 0;
        assertTrue(recvFixed ? fixedRx >= atLeast : fixedRx == 0,
                "RECV into fixed buffers " + (recvFixed ? "works" : "is refused") + " here, but " + fixedRx
                        + " reply bytes went into the registered rx");
        assertEquals(fixedRx, DataPathStats.fixedRxBytes() - before);
        assertTrue(conn.isOpen());
    }

    @Test
    void requestsSubmittedTogetherLeaveInOneSendChain() throws Exception {
        conn = connect(startNbdkit(List.of(), "memory", "64M"), 32, Duration.ofSeconds(10));
        MemorySegment buf = arena.allocate(8 * 4096, 4096);
        List<CompletableFuture<Integer>> reads = new ArrayList<>();
        for (int t = 0; t < 8; t++) {
            reads.add(new CompletableFuture<>());
            pending.put(t, reads.get(t));
        }
        long before = loop.submit(conn::sendChains).get(10, TimeUnit.SECONDS);
        loop.execute(() -> {
            for (int t = 0; t < 8; t++) {
                conn.submit(t, Command.READ, 0, (long) t * 4096, 4096, -1, buf.address() + (long) t * 4096);
            }
        });
        for (CompletableFuture<Integer> r : reads) {
            assertEquals(4096, get(r));
        }
        long chains = loop.submit(conn::sendChains).get(10, TimeUnit.SECONDS) - before;
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
        assertTrue(conn.isOpen());
    }

    @Test
    void killedServerFailsRequestsInFlightWithEioAndNothingHangs() throws Exception {
        // A read that takes 60 s on the server; the server dies while it is in flight.
        conn = connect(startNbdkit(List.of("--filter=delay"), "memory", "16M", "rdelay=60"), 4, Duration.ofSeconds(30));
        CompletableFuture<Integer> read = submit(0, Command.READ, 0, 0, 4096, arena.allocate(4096));
        Thread.sleep(300);
        server.kill();
        assertEquals(-EIO, get(read));
        assertTrue(lost.get(10, TimeUnit.SECONDS).contains("closed"), lost.getNow(""));
        // Later requests fail at once instead of waiting.
        assertEquals(-EIO, get(submit(1, Command.READ, 0, 0, 4096, arena.allocate(4096))));
    }

    @Test
    void gracefulServerShutdownIsASoftDisconnect() throws Exception {
        conn = connect(startNbdkit(List.of("--filter=delay"), "memory", "16M", "rdelay=60"), 4, Duration.ofSeconds(30));
        CompletableFuture<Integer> read = submit(0, Command.READ, 0, 0, 4096, arena.allocate(4096));
        Thread.sleep(300);
        server.close(); // SIGTERM: nbdkit answers what is in flight with ESHUTDOWN, then closes
        int r = get(read);
        assertTrue(r == -ESHUTDOWN || r == -EIO, "result " + r);
        lost.get(10, TimeUnit.SECONDS);
        assertEquals(-EIO, get(submit(1, Command.READ, 0, 0, 4096, arena.allocate(4096))));
    }

    @Test
    void unansweredRequestTimesOutWithEio() throws Exception {
        conn = connect(startNbdkit(List.of("--filter=delay"), "memory", "16M", "rdelay=60"), 4, Duration.ofMillis(800));
        long t0 = System.nanoTime();
        CompletableFuture<Integer> read = submit(0, Command.READ, 0, 0, 4096, arena.allocate(4096));
        assertTrue(!loopHasScheduledTask(), "the I/O timeout check sits on the loop's schedule");
        assertEquals(-EIO, get(read));
        long ms = TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - t0);
        assertTrue(ms >= 700 && ms < 5000, "timed out after " + ms + " ms");
        assertTrue(lost.get(1, TimeUnit.SECONDS).contains("no reply"), lost.getNow(""));
    }

    @Test
    void silentServerTimesOutTheHandshakeWithoutTheLoopsSchedule() throws Exception {
        // A server that accepts and never says a word: the handshake must end at the connect timeout.
        Path sock = dir.resolve("silent.sock");
        try (java.nio.channels.ServerSocketChannel silent = java.nio.channels.ServerSocketChannel
                .open(java.net.StandardProtocolFamily.UNIX)) {
            silent.bind(UnixDomainSocketAddress.of(sock));
            long t0 = System.nanoTime();
            CompletableFuture<NbdRingConnection> c = connecting(sock, 4, Duration.ofMillis(600), Duration.ofSeconds(30));
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
