package io.nbdgate.gateway.session;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.nbdgate.gateway.config.DeviceConfig;
import io.nbdgate.gateway.device.QuietUringTransport;
import io.nbdgate.gateway.testsupport.ExternalNbdServer;
import io.nbdgate.gateway.testsupport.SessionHarness;
import io.nbdgate.protocol.Command;
import io.nbdgate.protocol.client.HandshakeConfig;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A request alone on an idle link (queue depth 1: an fsync, a single-threaded copy) waits for nothing but its own
 * reply: its header is on the ring before the loop turns back to the ring, and the completion that brings its
 * reply completes it. nbdkit over TCP, which sends a reply's header and data together as a remote server does.
 */
class LoneRequestTest {
    @TempDir
    Path dir;

    private SessionHarness h;
    private ExternalNbdServer server;
    private volatile long submitTurn;
    /** Turns of the loop from the one that submitted the last {@link #alone} request to the one that completed it. */
    private long turns;

    @BeforeEach
    void setUp() throws Exception {
        h = new SessionHarness();
        server = h.serving(ExternalNbdServer.nbdkit(dir, List.of(), "memory", "64M"));
    }

    @AfterEach
    void tearDown() throws Exception {
        h.close();
        assertEquals(0, h.strayCompletions.get(), "a request completed twice");
    }

    private void open(int stageMax) throws Exception {
        open(server, HandshakeConfig.go(""), stageMax);
    }

    private void open(ExternalNbdServer to, HandshakeConfig config, int stageMax) throws Exception {
        h.open(to.socketAddress(), config, 8, Duration.ofSeconds(10), stageMax,
                ReconnectPolicy.of(Duration.ofMinutes(1)));
        h.recordFrames = true;
        company();
    }

    /** Eight writes submitted in one loop pass, so all are in flight at once: the link has had company. */
    private void company() throws Exception {
        MemorySegment data = h.arena.allocate(8 * 4096L);
        data.fill((byte) 0x3c);
        List<CompletableFuture<Integer>> writes = new ArrayList<>();
        for (int t = 0; t < 8; t++) {
            writes.add(h.expect(t));
        }
        h.loop.execute(() -> {
            for (int t = 0; t < 8; t++) {
                h.submitNow(t, Command.WRITE, 0, t * 4096L, 4096, data.asSlice(t * 4096L, 4096));
            }
        });
        for (CompletableFuture<Integer> w : writes) {
            assertEquals(4096, w.get(10, TimeUnit.SECONDS));
        }
    }

    /**
     * Submits one request on the loop and returns the link's frames its completion ran in. Fails unless its send
     * chain was built in the pass that submitted it: a task queued right behind the submission must find it.
     */
    private List<String> alone(String what, Command cmd, long offset, long length, MemorySegment buf) throws Exception {
        long chainsBefore = h.link(l -> l.counters().sendChains());
        long heldBefore = h.link(l -> l.counters().readsHeldBack());
        CompletableFuture<Integer> done = h.expect(0);
        CompletableFuture<Long> chainsBehind = new CompletableFuture<>();
        h.loop.execute(() -> {
            submitTurn = QuietUringTransport.turns(h.loop);
            h.submitNow(0, cmd, 0, offset, length, buf);
            h.loop.execute(() -> chainsBehind.complete(h.session.link().counters().sendChains()));
        });
        assertEquals(chainsBefore + 1, chainsBehind.get(10, TimeUnit.SECONDS),
                what + " was not on the ring by the end of the pass that submitted it");
        assertEquals((int) length, done.get(10, TimeUnit.SECONDS), what);
        turns = h.completedTurn.get(0) - submitTurn;
        assertEquals(heldBefore, h.link(l -> l.counters().readsHeldBack()), what + " was held back");
        return h.completedIn.get(0);
    }

    private static void assertCompletedIn(String frame, List<String> frames, String what) {
        assertTrue(!frames.isEmpty() && frames.contains(frame) && !frames.contains("SendPipeline.onSent"),
                what + " should complete in " + frame + ", the completion that brought its reply, but completed in "
                        + frames);
    }

    /**
     * After company the idle link arms a batching receive, which takes the next READ's header and data at once
     * (staged); once requests come one at a time it arms a header-only receive, and a lone READ's data goes
     * straight into its pages: staging it would buy no other reply for its copy.
     */
    @Test
    void aLoneSmallReadIsStagedAfterCompanyAndReceivedStraightIntoItsPagesWhenAlone() throws Exception {
        open(DeviceConfig.DEFAULT_STAGE_READS_MAX);
        MemorySegment buf = h.arena.allocate(4096);
        byte[] want = new byte[4096];
        java.util.Arrays.fill(want, (byte) 0x3c);
        long fewestTurns = Long.MAX_VALUE;
        for (int i = 0; i < 4; i++) {
            long staged = h.link(l -> l.counters().stagedBytes());
            long receives = h.link(l -> l.counters().headerReceives());
            long direct = h.link(l -> l.counters().directSends());
            long ringOps = h.link(l -> l.counters().ringOperations());
            long ahead = h.link(l -> l.counters().readsReceivedAhead());
            buf.fill((byte) 0);
            List<String> frames = alone("4k READ " + i, Command.READ, i * 4096L, 4096, buf);
            assertEquals(1, h.link(l -> l.counters().directSends()) - direct,
                    "its header went to the socket from the loop thread");
            assertEquals(1, h.link(l -> l.counters().headerReceives()) - receives,
                    "one header receive took its reply, armed before it was sent");
            if (i == 0) {
                assertCompletedIn("ReplyPipeline.onHeaderBytes", frames, "a READ after company");
                assertEquals(4096, h.link(l -> l.counters().stagedBytes()) - staged, "its data came with its header");
                assertEquals(0, h.link(l -> l.counters().ringOperations()) - ringOps,
                        "the ring did nothing for it (no SEND whose completion returns the loop; the idle receive "
                                + "behind it waits for the next request)");
                assertEquals(0, h.link(l -> l.counters().readsReceivedAhead()) - ahead, "a READ after company");
            } else {
                assertCompletedIn("DataLanding.onData", frames, "a READ after lone requests");
                fewestTurns = Math.min(fewestTurns, turns);
                assertEquals(0, h.link(l -> l.counters().stagedBytes()) - staged,
                        "a lone READ's data was staged (copied from the header buffer)");
                assertEquals(2, h.link(l -> l.counters().ringOperations()) - ringOps,
                        "the ring received its reply's header, and its data into its buffer");
                assertEquals(0, h.link(l -> l.counters().readsReceivedAhead()) - ahead,
                        "with structured replies a READ's data may come in pieces: it is not received ahead");
            }
            assertArrayEquals(want, buf.toArray(ValueLayout.JAVA_BYTE));
        }
        // The loop's turn after the one that submitted a lone READ waits for its reply and completes it: its data
        // receive is submitted and completes within that turn. (The fewest of three: the link's timeout ticker
        // wakes the loop once a second, which may put a turn in between.)
        assertEquals(1, fewestTurns, "lone READs took more than the turn their replies came in");
        company();
        long staged = h.link(l -> l.counters().stagedBytes());
        assertCompletedIn("ReplyPipeline.onHeaderBytes", alone("4k READ after company again", Command.READ, 0, 4096,
                buf), "a READ after company again");
        assertEquals(4096, h.link(l -> l.counters().stagedBytes()) - staged, "company turns batching back on");
    }

    @Test
    void loneWritesFlushesAndLargeReadsCompleteOnTheirReply() throws Exception {
        open(DeviceConfig.DEFAULT_STAGE_READS_MAX);
        MemorySegment big = h.arena.allocate(1 << 20);
        byte[] pattern = new byte[1 << 20];
        new Random(23).nextBytes(pattern);
        MemorySegment.copy(pattern, 0, big, ValueLayout.JAVA_BYTE, 0, pattern.length);
        assertCompletedIn("ReplyPipeline.onHeaderBytes", alone("1 MiB WRITE", Command.WRITE, 1 << 20, 1 << 20, big),
                "a lone WRITE");
        assertCompletedIn("ReplyPipeline.onHeaderBytes", alone("FLUSH", Command.FLUSH, 0, 0, null), "a lone FLUSH");
        big.fill((byte) 0);
        // Larger than stage-reads-max: its data is received straight into its buffer, and that receive completes it.
        assertCompletedIn("DataLanding.onData", alone("1 MiB READ", Command.READ, 1 << 20, 1 << 20, big),
                "a lone 1 MiB READ");
        assertArrayEquals(pattern, big.toArray(ValueLayout.JAVA_BYTE));
    }

    @Test
    void aReadThatCannotBeStagedIsNotHeldForTheIdleBatchingReceive() throws Exception {
        // stage-reads-max 0: no READ may meet a batching receive; after the writes the idle link has one armed.
        open(0);
        MemorySegment buf = h.arena.allocate(4096);
        for (int i = 0; i < 3; i++) {
            assertCompletedIn("DataLanding.onData", alone("4k READ", Command.READ, i * 4096L, 4096, buf),
                    "a lone unstageable READ");
            assertEquals(0, h.link(l -> l.counters().stagedBytes()), "nothing may be staged");
            MemorySegment w = h.arena.allocate(4096);
            w.fill((byte) i);
            assertCompletedIn("ReplyPipeline.onHeaderBytes", alone("4k WRITE", Command.WRITE, 0, 4096, w),
                    "a lone WRITE");
        }
        assertTrue(h.link(l -> l.counters().batchingCancels()) > 0,
                "the first READ met the idle batching receive and went out behind its cancel: otherwise this proves nothing");
    }

    /**
     * With simple replies (a server on this host, by default) a lone READ's reply is 16 bytes, then its data: the
     * data's receive goes out with the header's, linked behind, so the reply is in after one wake-up and no
     * submission of its own. A request that comes meanwhile waits for it: nbdkit answers a WRITE before a READ it
     * delays, and that reply must not meet the READ's data receive.
     */
    @Test
    void aLoneReadsDataReceiveGoesOutLinkedBehindItsHeadersWithSimpleReplies() throws Exception {
        Path delayDir = java.nio.file.Files.createDirectories(dir.resolve("delay"));
        ExternalNbdServer delaying = h.serving(ExternalNbdServer.nbdkit(delayDir, List.of("--filter=delay"),
                "memory", "size=64M", "rdelay=500ms"));
        open(delaying, HandshakeConfig.goSimple(""), DeviceConfig.DEFAULT_STAGE_READS_MAX);
        MemorySegment buf = h.arena.allocate(4096);
        byte[] want = new byte[4096];
        java.util.Arrays.fill(want, (byte) 0x3c);
        for (int i = 0; i < 3; i++) {
            long ahead = h.link(l -> l.counters().readsReceivedAhead());
            long ringOps = h.link(l -> l.counters().ringOperations());
            buf.fill((byte) 0);
            List<String> frames = alone("4k READ " + i, Command.READ, i * 4096L, 4096, buf);
            assertArrayEquals(want, buf.toArray(ValueLayout.JAVA_BYTE));
            if (i > 0) {
                assertCompletedIn("DataLanding.onData", frames, "a READ after lone requests");
                assertEquals(1, h.link(l -> l.counters().readsReceivedAhead()) - ahead,
                        "its data receive went out with its header's, before the reply came");
                assertEquals(2, h.link(l -> l.counters().ringOperations()) - ringOps,
                        "the ring received its reply's header and its data, nothing else");
            }
        }
        // A WRITE submitted a turn after a lone READ whose reply nbdkit delays: held until the READ's data is in.
        Object link = h.onLoop(() -> h.session.link());
        long held = h.link(l -> l.counters().heldBehindReadAhead());
        MemorySegment w = h.arena.allocate(4096);
        w.fill((byte) 0x5a);
        buf.fill((byte) 0);
        CompletableFuture<Integer> read = h.expect(0);
        CompletableFuture<Integer> write = h.expect(1);
        h.loop.execute(() -> {
            h.submitNow(0, Command.READ, 0, 0, 4096, buf);
            h.loop.execute(() -> h.loop.execute(() -> h.submitNow(1, Command.WRITE, 0, 8 * 4096L, 4096, w)));
        });
        assertEquals(4096, read.get(10, TimeUnit.SECONDS));
        assertEquals(4096, write.get(10, TimeUnit.SECONDS));
        assertArrayEquals(want, buf.toArray(ValueLayout.JAVA_BYTE));
        assertEquals(held + 1, h.link(l -> l.counters().heldBehindReadAhead()), "the WRITE waited for the READ");
        assertTrue(link == h.onLoop(() -> h.session.link()), "the link was lost on the way");
        assertEquals(4096, h.submit(2, Command.READ, 0, 8 * 4096L, 4096, buf).get(10, TimeUnit.SECONDS));
        assertEquals(0x5a, buf.get(ValueLayout.JAVA_BYTE, 0), "the WRITE's data");
    }

    /**
     * A READ's error reply has no data: the data receive that went out ahead of it is cancelled, the READ fails with
     * the server's error, and the link goes on.
     */
    @Test
    void anErrorReplyCancelsTheDataReceiveThatWentAheadAndTheLinkGoesOn() throws Exception {
        Path errorDir = java.nio.file.Files.createDirectories(dir.resolve("errors"));
        Path trigger = java.nio.file.Files.createFile(errorDir.resolve("errors-on"));
        ExternalNbdServer failing = h.serving(ExternalNbdServer.nbdkit(errorDir, List.of("--filter=error"), "memory",
                "size=64M", "error=EIO", "error-pread-rate=100%", "error-pread-file=" + trigger));
        open(failing, HandshakeConfig.goSimple(""), DeviceConfig.DEFAULT_STAGE_READS_MAX);
        Object link = h.onLoop(() -> h.session.link());
        MemorySegment buf = h.arena.allocate(4096);
        long ahead = h.link(l -> l.counters().readsReceivedAhead());
        for (int i = 0; i < 3; i++) {
            assertEquals(-5, h.submit(0, Command.READ, 0, i * 4096L, 4096, buf).get(10, TimeUnit.SECONDS),
                    "EIO from the server");
        }
        assertTrue(h.link(l -> l.counters().readsReceivedAhead()) - ahead >= 2,
                "the lone READs' data receives went ahead, to be cancelled: otherwise this proves nothing");
        java.nio.file.Files.delete(trigger);
        byte[] want = new byte[4096];
        java.util.Arrays.fill(want, (byte) 0x3c);
        assertEquals(4096, h.submit(0, Command.READ, 0, 0, 4096, buf).get(10, TimeUnit.SECONDS));
        assertArrayEquals(want, buf.toArray(ValueLayout.JAVA_BYTE));
        assertEquals(4096, h.submit(1, Command.WRITE, 0, 0, 4096, buf).get(10, TimeUnit.SECONDS));
        assertTrue(link == h.onLoop(() -> h.session.link()), "server errors are not a lost connection");
    }

    /**
     * An idle link without kernel TLS has no receive in the kernel: its hang-up watch notices the server going away
     * without a request to find out.
     */
    @Test
    void anIdleLinkNoticesTheServerGoingAway() throws Exception {
        open(server, HandshakeConfig.goSimple(""), DeviceConfig.DEFAULT_STAGE_READS_MAX);
        MemorySegment buf = h.arena.allocate(4096);
        alone("4k READ", Command.READ, 0, 4096, buf);
        alone("4k READ", Command.READ, 4096, 4096, buf);
        assertEquals(LinkStatus.State.CONNECTED, h.onLoop(() -> h.session.status().state()));
        server.kill();
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(5);
        while (h.onLoop(() -> h.session.status().state()) == LinkStatus.State.CONNECTED) {
            assertTrue(System.nanoTime() < deadline, "the idle link did not notice the server's end within 5 s");
            Thread.sleep(20);
        }
    }
}
