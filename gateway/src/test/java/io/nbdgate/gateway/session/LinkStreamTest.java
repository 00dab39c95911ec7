package io.nbdgate.gateway.session;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.nbdgate.gateway.config.DeviceConfig;
import io.nbdgate.gateway.link.Link;
import io.nbdgate.gateway.testsupport.SessionHarness;
import io.nbdgate.gateway.nbd.server.EmbeddedNbdServer;
import io.nbdgate.gateway.nbd.server.Export;
import io.nbdgate.gateway.nbd.server.NbdServerConfig;
import io.nbdgate.protocol.Command;
import io.nbdgate.protocol.CommandFlag;
import io.nbdgate.protocol.TransmissionMode;
import io.nbdgate.protocol.client.HandshakeConfig;
import io.nbdgate.uring.LinuxCalls;
import io.netty.channel.IoEventLoop;
import io.netty.channel.MultiThreadIoEventLoopGroup;
import io.netty.channel.uring.IoUringIoHandler;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.net.InetSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.ServerSocketChannel;
import java.nio.channels.SocketChannel;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

/**
 * The links' stream handling when TCP delivers bytes in the worst possible pieces: a relay between
 * it and the embedded server forwards both directions a few bytes at a time with pauses, so header
 * read-ahead comes back short, data receives end mid-range, and the receive linked behind a data
 * receive finds nothing yet. In every transmission mode, data read back must equal data written.
 */
class LinkStreamTest {
    private static final long SIZE = 8L << 20;

    private SessionHarness h;
    private EmbeddedNbdServer server;
    private ServerSocketChannel relay;
    private final List<Thread> pumps = new java.util.concurrent.CopyOnWriteArrayList<>();
    private Arena arena;
    private QueueSession conn;

    @BeforeEach
    void setUp() throws Exception {
        h = new SessionHarness();
        arena = h.arena;
        server = EmbeddedNbdServer.start(NbdServerConfig.tcp("127.0.0.1", 0,
                List.of(Export.memory("rw", SIZE, false))));
    }

    @AfterEach
    void tearDown() throws Exception {
        h.close();
        if (relay != null) {
            relay.close();
        }
        for (Thread t : pumps) {
            t.interrupt();
        }
        server.close();
        assertEquals(0, h.strayCompletions.get(), "a request completed twice");
    }

    /** How the relay forwards one direction. */
    private interface Forwarder {
        void forward(SocketChannel from, SocketChannel to, Random random);
    }

    /** Listens on an ephemeral port; each accepted connection is relayed to the server in tiny pieces. */
    private InetSocketAddress startRelay(long seed) throws IOException {
        return startRelay(seed, LinkStreamTest::dribble);
    }

    private InetSocketAddress startRelay(long seed, Forwarder forwarder) throws IOException {
        relay = ServerSocketChannel.open().bind(new InetSocketAddress("127.0.0.1", 0));
        Thread acceptor = Thread.ofPlatform().daemon().start(() -> {
            try {
                SocketChannel client = relay.accept();
                SocketChannel upstream = SocketChannel.open(new InetSocketAddress("127.0.0.1", server.port()));
                client.socket().setTcpNoDelay(true);
                upstream.socket().setTcpNoDelay(true);
                pumps.add(Thread.ofPlatform().daemon().start(() -> forwarder.forward(client, upstream, new Random(seed))));
                pumps.add(Thread.ofPlatform().daemon().start(() -> forwarder.forward(upstream, client, new Random(seed + 1))));
            } catch (IOException closed) {
                // the test is over
            }
        });
        pumps.add(acceptor);
        return (InetSocketAddress) relay.getLocalAddress();
    }

    /**
     * Relays connection after connection, each until a random number of bytes (counted both ways) has passed, then
     * resets both sides: cuts land in handshakes, request headers, payloads, reply headers and reply data.
     */
    private InetSocketAddress startCuttingRelay(long seed, java.util.concurrent.atomic.AtomicInteger cuts)
            throws IOException {
        relay = ServerSocketChannel.open().bind(new InetSocketAddress("127.0.0.1", 0));
        Random budgets = new Random(seed);
        Thread acceptor = Thread.ofPlatform().daemon().start(() -> {
            try {
                while (true) {
                    SocketChannel client = relay.accept();
                    SocketChannel upstream = SocketChannel.open(new InetSocketAddress("127.0.0.1", server.port()));
                    client.socket().setTcpNoDelay(true);
                    upstream.socket().setTcpNoDelay(true);
                    long budget = budgets.nextInt(8) == 0 ? 20 + budgets.nextInt(400) : 1000 + budgets.nextInt(400_000);
                    java.util.concurrent.atomic.AtomicLong left = new java.util.concurrent.atomic.AtomicLong(budget);
                    long s = budgets.nextLong();
                    pumps.add(Thread.ofPlatform().daemon().start(() -> cutAfter(client, upstream, left, new Random(s), cuts)));
                    pumps.add(Thread.ofPlatform().daemon().start(() -> cutAfter(upstream, client, left, new Random(s + 1), cuts)));
                }
            } catch (IOException closed) {
                // the test is over
            }
        });
        pumps.add(acceptor);
        return (InetSocketAddress) relay.getLocalAddress();
    }

    private static void cutAfter(SocketChannel from, SocketChannel to, java.util.concurrent.atomic.AtomicLong left,
                                 Random random, java.util.concurrent.atomic.AtomicInteger cuts) {
        ByteBuffer buf = ByteBuffer.allocate(64 << 10);
        try {
            while (from.read(buf) >= 0) {
                buf.flip();
                while (buf.hasRemaining()) {
                    int n = Math.min(buf.remaining(), 1 + random.nextInt(random.nextBoolean() ? 16 : 8192));
                    long allowed = left.getAndAdd(-n);
                    if (allowed <= 0) {
                        throw new IOException("cut");
                    }
                    ByteBuffer piece = buf.slice().limit((int) Math.min(n, allowed));
                    while (piece.hasRemaining()) {
                        to.write(piece);
                    }
                    buf.position(buf.position() + n);
                    if (allowed <= n) {
                        throw new IOException("cut");
                    }
                }
                buf.clear();
            }
            to.shutdownOutput();
        } catch (IOException e) {
            if ("cut".equals(e.getMessage())) {
                cuts.incrementAndGet();
            }
            for (SocketChannel c : new SocketChannel[] {from, to}) {
                try {
                    c.setOption(java.net.StandardSocketOptions.SO_LINGER, 0); // a reset, as a crash would leave
                    c.close();
                } catch (IOException ignored) {
                    // already gone
                }
            }
        }
    }

    /**
     * A stream cut at random points again and again: every request completes exactly once (the harness counts
     * strays), with the right data, because the session resends what a cut link did not answer.
     */
    @ParameterizedTest
    @EnumSource(TransmissionMode.class)
    void streamCutAtRandomPointsLosesNothingAndCompletesEachRequestOnce(TransmissionMode mode) throws Exception {
        java.util.concurrent.atomic.AtomicInteger cuts = new java.util.concurrent.atomic.AtomicInteger();
        int depth = 16;
        conn = h.open(startCuttingRelay(200 + mode.ordinal(), cuts), handshake(mode), depth, Duration.ofSeconds(30),
                DeviceConfig.DEFAULT_STAGE_READS_MAX, new ReconnectPolicy(Duration.ofMinutes(1), Duration.ofMillis(5),
                        Duration.ofMillis(50)));
        roundTrips(depth, 16, 128 << 10, new Random(17), 60, "cut " + mode);
        LinkStatus s = conn.status();
        assertTrue(cuts.get() >= 10, "only " + cuts.get() + " cuts: the test proves little");
        assertTrue(s.reconnects() >= cuts.get() / 2, s + " after " + cuts.get() + " cuts");
        assertTrue(s.resent() > 0, "no request was ever resent: " + s);
    }

    private static void dribble(SocketChannel from, SocketChannel to, Random random) {
        ByteBuffer buf = ByteBuffer.allocate(64 << 10);
        try {
            while (from.read(buf) >= 0) {
                buf.flip();
                while (buf.hasRemaining()) {
                    ByteBuffer piece = buf.slice();
                    int n = Math.min(buf.remaining(), random.nextInt(4) == 0 ? 1 + random.nextInt(5000)
                            : 1 + random.nextInt(7));
                    piece.limit(n);
                    while (piece.hasRemaining()) {
                        to.write(piece);
                    }
                    buf.position(buf.position() + n);
                    if (random.nextInt(16) == 0) {
                        Thread.sleep(1);
                    }
                }
                buf.clear();
            }
            to.shutdownOutput();
        } catch (IOException | InterruptedException e) {
            // one side closed
        }
    }

    /** Writes all that {@code buf} holds to {@code to} and empties it. */
    private static void passOn(ByteBuffer buf, SocketChannel to) throws IOException {
        buf.flip();
        while (buf.hasRemaining()) {
            to.write(buf);
        }
        buf.clear();
    }

    /** Forwards in bursts: waits 20 ms before passing on what arrived, so replies reach the client in bunches. */
    private static void bunch(SocketChannel from, SocketChannel to, Random random) {
        ByteBuffer buf = ByteBuffer.allocate(256 << 10);
        try {
            while (from.read(buf) >= 0) {
                Thread.sleep(20);
                passOn(buf, to);
            }
            to.shutdownOutput();
        } catch (IOException | InterruptedException e) {
            // one side closed
        }
    }

    /** Forwards in 16 KiB pieces, 3 ms apart: a large reply reaches the client in dozens of separate segments. */
    private static void pace(SocketChannel from, SocketChannel to, Random random) {
        ByteBuffer buf = ByteBuffer.allocate(16 << 10);
        try {
            while (from.read(buf) >= 0) {
                passOn(buf, to);
                Thread.sleep(3);
            }
            to.shutdownOutput();
        } catch (IOException | InterruptedException e) {
            // one side closed
        }
    }

    /** Passes on what arrives once 20 ms pass without more: each reply reaches the client in one write. */
    private static void whole(SocketChannel from, SocketChannel to, Random random) {
        ByteBuffer buf = ByteBuffer.allocate(1 << 20);
        try {
            while (from.read(buf) >= 0) {
                int before;
                do {
                    before = buf.position();
                    Thread.sleep(20);
                    from.configureBlocking(false);
                    from.read(buf);
                    from.configureBlocking(true);
                } while (buf.position() > before && buf.hasRemaining());
                passOn(buf, to);
            }
            to.shutdownOutput();
        } catch (IOException | InterruptedException e) {
            // one side closed
        }
    }

    private QueueSession connect(InetSocketAddress at, TransmissionMode mode, int depth) throws Exception {
        return connect(at, mode, depth, DeviceConfig.DEFAULT_STAGE_READS_MAX);
    }

    private QueueSession connect(InetSocketAddress at, TransmissionMode mode, int depth, int stageMax)
            throws Exception {
        QueueSession c = h.open(at, handshake(mode), depth, Duration.ofSeconds(30), stageMax,
                ReconnectPolicy.of(Duration.ofMinutes(1)));
        assertEquals(mode, c.export().mode());
        return c;
    }

    private static HandshakeConfig handshake(TransmissionMode mode) {
        return new HandshakeConfig("rw", HandshakeConfig.Goal.GO, false, mode == TransmissionMode.EXTENDED,
                mode != TransmissionMode.SIMPLE);
    }

    /**
     * While only writes are in flight, one receive takes every reply header that has arrived, instead of
     * one (or part of one) per receive.
     */
    @ParameterizedTest
    @EnumSource(TransmissionMode.class)
    void writeRepliesThatArriveTogetherAreTakenByOneReceive(TransmissionMode mode) throws Exception {
        int depth = 16;
        conn = connect(startRelay(mode.ordinal(), LinkStreamTest::bunch), mode, depth);
        MemorySegment buf = arena.allocate(4096, 4096);
        int rounds = 10;
        long before = h.link(l -> l.counters().headerReceives());
        for (int round = 0; round < rounds; round++) {
            List<CompletableFuture<Integer>> writes = new ArrayList<>();
            for (int t = 0; t < depth; t++) {
                writes.add(submit(t, Command.WRITE, 0, (long) t * 4096, 4096, buf));
            }
            for (CompletableFuture<Integer> w : writes) {
                assertEquals(4096, w.get(30, TimeUnit.SECONDS));
            }
        }
        long receives = h.link(l -> l.counters().headerReceives()) - before;
        // One receive per reply (or more) without batching; bunches of 16 replies need a few at most.
        assertTrue(receives <= rounds * depth / 4, receives + " header receives for " + rounds * depth + " replies");
    }

    /**
     * Reads and writes at once over a stream delivered in random pieces, READs not staged: a READ submitted
     * while a batching receive is out goes behind that receive's cancel (or, if the receive is linked and cannot be
     * cancelled, waits until it ends), so its data still goes straight to its buffer and never into the header
     * buffer.
     */
    @ParameterizedTest
    @EnumSource(TransmissionMode.class)
    void readsSubmittedWhileWriteRepliesAreBatchedStillLandInTheirBuffers(TransmissionMode mode) throws Exception {
        mixedReadsAndWritesReadBackExactly(mode, 0);
        assertTrue(h.link(l -> l.counters().batchingCancels() + l.counters().readsHeldBack()) > 0,
                "no READ ever met a batching receive: the test proves nothing");
        assertEquals(0, h.link(l -> l.counters().stagedBytes()), "staging is off");
    }

    /**
     * The same with staging: small READs' replies are received together with the others and copied into
     * place (here by Java, as in the copy modes), large ones straight into their buffers, and all read back
     * exactly, over a stream cut into random pieces, in every transmission mode.
     */
    @ParameterizedTest
    @EnumSource(TransmissionMode.class)
    void stagedReadRepliesLandExactlyInTheirBuffers(TransmissionMode mode) throws Exception {
        mixedReadsAndWritesReadBackExactly(mode, 16 << 10);
        assertTrue(h.link(l -> l.counters().stagedBytes()) > 0, "no reply was staged: the test proves nothing");
        assertEquals(0, h.link(l -> l.counters().readsHeldBack()), "stageable READs are never held back");
    }

    private void mixedReadsAndWritesReadBackExactly(TransmissionMode mode, int stageMax) throws Exception {
        int depth = 16;
        conn = connect(startRelay(100 + mode.ordinal()), mode, depth, stageMax);
        Random random = new Random(11);
        long region = SIZE / depth;
        byte[] model = new byte[(int) SIZE];
        MemorySegment[] bufs = new MemorySegment[depth];
        for (int t = 0; t < depth; t++) {
            bufs[t] = arena.allocate(64 << 10, 4096);
        }
        for (int round = 0; round < 12; round++) {
            // Even tags write, odd tags read what earlier rounds wrote; reads go out once writes are under way.
            List<CompletableFuture<Integer>> writes = new ArrayList<>();
            int[] lengths = new int[depth];
            long[] offsets = new long[depth];
            for (int t = 0; t < depth; t++) {
                lengths[t] = 1 + random.nextInt(random.nextBoolean() ? 8 << 10 : 64 << 10);
                int owner = (t + round) % depth; // every region is written and read over the rounds
                offsets[t] = owner * region + random.nextInt((int) region - lengths[t]);
            }
            for (int t = 0; t < depth; t += 2) {
                byte[] data = new byte[lengths[t]];
                random.nextBytes(data);
                System.arraycopy(data, 0, model, (int) offsets[t], lengths[t]);
                MemorySegment.copy(data, 0, bufs[t], ValueLayout.JAVA_BYTE, 0, lengths[t]);
                writes.add(submit(t, Command.WRITE, 0, offsets[t], lengths[t], bufs[t]));
            }
            CompletableFuture.anyOf(writes.toArray(CompletableFuture[]::new)).get(30, TimeUnit.SECONDS);
            List<CompletableFuture<Integer>> reads = new ArrayList<>();
            for (int t = 1; t < depth; t += 2) {
                bufs[t].fill((byte) 0x5a);
                reads.add(submit(t, Command.READ, 0, offsets[t], lengths[t], bufs[t]));
            }
            for (int i = 0; i < writes.size(); i++) {
                assertEquals(lengths[2 * i], writes.get(i).get(30, TimeUnit.SECONDS), "write " + 2 * i);
            }
            for (int i = 0; i < reads.size(); i++) {
                int t = 2 * i + 1;
                assertEquals(lengths[t], reads.get(i).get(30, TimeUnit.SECONDS), "read " + t);
                byte[] expected = java.util.Arrays.copyOfRange(model, (int) offsets[t], (int) offsets[t] + lengths[t]);
                assertArrayEquals(expected, bufs[t].asSlice(0, lengths[t]).toArray(ValueLayout.JAVA_BYTE),
                        "round " + round + " tag " + t + " (" + mode + ")");
            }
        }
    }

    /**
     * The data of a 1 MiB READ that arrives in 64 pieces wakes the loop thread a few times, not once per piece:
     * the receive waits, through SO_RCVLOWAT, until all of it is there. Counted as the loop thread's voluntary
     * context switches during the READ, against the same READ with the wait turned off (which must show the
     * per-piece wake-ups, or the count proves nothing). The data must still be exact.
     */
    @ParameterizedTest
    @EnumSource(value = TransmissionMode.class, names = {"SIMPLE", "EXTENDED"})
    void largeReadDataWakesTheLoopOnceNotOncePerSegment(TransmissionMode mode) throws Exception {
        conn = connect(startRelay(0, LinkStreamTest::pace), mode, 4);
        int len = 1 << 20;
        MemorySegment buf = arena.allocate(len, 4096);
        byte[] data = new byte[len];
        new Random(3).nextBytes(data);
        MemorySegment.copy(data, 0, buf, ValueLayout.JAVA_BYTE, 0, len);
        assertEquals(len, submit(0, Command.WRITE, 0, 0, len, buf).get(30, TimeUnit.SECONDS));

        long perSegment = loopWakeUpsDuringRead(false, buf, len);
        assertArrayEquals(data, buf.toArray(ValueLayout.JAVA_BYTE), "without the wait (" + mode + ")");
        long before = h.link(l -> l.counters().lowWaterReceives());
        long whole = loopWakeUpsDuringRead(true, buf, len);
        assertArrayEquals(data, buf.toArray(ValueLayout.JAVA_BYTE), "with the wait (" + mode + ")");

        assertTrue(h.link(l -> l.counters().lowWaterReceives()) > before, "the READ did not use the wait");
        assertTrue(perSegment >= 32, "without the wait the loop woke only " + perSegment
                + " times for 64 pieces: the count cannot show a difference");
        assertTrue(whole <= 8, "the loop woke " + whole + " times for one READ (" + perSegment + " without the wait)");
    }

    /**
     * A large READ whose data has arrived with its header is taken by one receive, without the low-water mark and
     * its two setsockopt calls: the relay passes each reply on in one write. Without the first try every one of
     * these READs would set the mark; a few may still, when the loop is quicker than the relay's second segment.
     */
    @ParameterizedTest
    @EnumSource(value = TransmissionMode.class, names = {"SIMPLE", "EXTENDED"})
    void largeReadDataThatHasArrivedIsTakenWithoutTheMark(TransmissionMode mode) throws Exception {
        conn = connect(startRelay(0, LinkStreamTest::whole), mode, 4);
        int len = 64 << 10;
        int reads = 32;
        MemorySegment buf = arena.allocate(len, 4096);
        byte[] data = new byte[len];
        new Random(5).nextBytes(data);
        MemorySegment.copy(data, 0, buf, ValueLayout.JAVA_BYTE, 0, len);
        assertEquals(len, submit(0, Command.WRITE, 0, 0, len, buf).get(30, TimeUnit.SECONDS));
        long before = h.link(l -> l.counters().lowWaterReceives());
        for (int i = 0; i < reads; i++) {
            buf.fill((byte) 0);
            assertEquals(len, submit(0, Command.READ, 0, 0, len, buf).get(30, TimeUnit.SECONDS));
            assertArrayEquals(data, buf.toArray(ValueLayout.JAVA_BYTE), "read " + i + " (" + mode + ")");
        }
        long marked = h.link(l -> l.counters().lowWaterReceives()) - before;
        assertTrue(marked <= reads / 2, marked + " of " + reads + " READs whose data had arrived waited with the mark");
    }

    private long loopWakeUpsDuringRead(boolean lowWater, MemorySegment buf, int len) throws Exception {
        h.onLoop(() -> {
            conn.link().counters().useLowWater(lowWater);
            return null;
        });
        buf.fill((byte) 0);
        long before = h.onLoop(LinkStreamTest::voluntarySwitches);
        assertEquals(len, submit(0, Command.READ, 0, 0, len, buf).get(30, TimeUnit.SECONDS));
        return h.onLoop(LinkStreamTest::voluntarySwitches) - before;
    }

    /** The calling thread's voluntary context switches: each is a sleep the kernel woke it from. */
    private static long voluntarySwitches() {
        try {
            for (String line : java.nio.file.Files.readAllLines(java.nio.file.Path.of("/proc/thread-self/status"))) {
                if (line.startsWith("voluntary_ctxt_switches:")) {
                    return Long.parseLong(line.substring(line.indexOf(':') + 1).trim());
                }
            }
        } catch (IOException e) {
            throw new java.io.UncheckedIOException(e);
        }
        throw new IllegalStateException("no voluntary_ctxt_switches in /proc/thread-self/status");
    }

    private CompletableFuture<Integer> submit(int tag, Command cmd, int flags, long offset, long length,
                                              MemorySegment buf) {
        return h.submit(tag, cmd, flags, offset, length, buf);
    }

    @ParameterizedTest
    @EnumSource(TransmissionMode.class)
    void dribbledStreamRoundTripsExactlyInEveryMode(TransmissionMode mode) throws Exception {
        int depth = 16;
        conn = connect(startRelay(mode.ordinal()), mode, depth);

        roundTrips(depth, 8, 256 << 10, new Random(7), 30, mode.toString());
    }

    /**
     * Rounds of WRITEs of random lengths to random places (one region per tag, some FUA), a FLUSH, and READs of
     * the same ranges that must return exactly what was written.
     */
    private void roundTrips(int depth, int rounds, int maxLen, Random random, int timeoutSeconds, String what)
            throws Exception {
        byte[] model = new byte[(int) SIZE];
        MemorySegment[] bufs = new MemorySegment[depth];
        for (int t = 0; t < depth; t++) {
            bufs[t] = arena.allocate(maxLen, 4096);
        }
        long region = SIZE / depth;
        for (int round = 0; round < rounds; round++) {
            List<CompletableFuture<Integer>> writes = new ArrayList<>();
            long[] offsets = new long[depth];
            int[] lengths = new int[depth];
            for (int t = 0; t < depth; t++) {
                lengths[t] = 1 + random.nextInt(random.nextBoolean() ? Math.min(8 << 10, maxLen) : maxLen);
                offsets[t] = t * region + random.nextInt((int) region - lengths[t]);
                byte[] data = new byte[lengths[t]];
                random.nextBytes(data);
                System.arraycopy(data, 0, model, (int) offsets[t], lengths[t]);
                MemorySegment.copy(data, 0, bufs[t], ValueLayout.JAVA_BYTE, 0, lengths[t]);
                writes.add(submit(t, Command.WRITE, t % 3 == 0 ? CommandFlag.FUA : 0, offsets[t], lengths[t], bufs[t]));
            }
            for (int t = 0; t < depth; t++) {
                assertEquals(lengths[t], writes.get(t).get(timeoutSeconds, TimeUnit.SECONDS), "write " + t);
            }
            assertEquals(0, submit(0, Command.FLUSH, 0, 0, 0, null).get(timeoutSeconds, TimeUnit.SECONDS));
            List<CompletableFuture<Integer>> reads = new ArrayList<>();
            for (int t = 0; t < depth; t++) {
                bufs[t].fill((byte) 0x5a);
                reads.add(submit(t, Command.READ, 0, offsets[t], lengths[t], bufs[t]));
            }
            for (int t = 0; t < depth; t++) {
                assertEquals(lengths[t], reads.get(t).get(timeoutSeconds, TimeUnit.SECONDS), "read " + t);
                byte[] expected = java.util.Arrays.copyOfRange(model, (int) offsets[t], (int) offsets[t] + lengths[t]);
                assertArrayEquals(expected, bufs[t].asSlice(0, lengths[t]).toArray(ValueLayout.JAVA_BYTE),
                        "round " + round + " tag " + t + " (" + what + ")");
            }
        }
    }
}
