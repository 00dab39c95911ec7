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
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

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
        open(stageMax, HandshakeConfig.go(""));
    }

    private void open(int stageMax, HandshakeConfig config) throws Exception {
        h.open(server.socketAddress(), config, 8, Duration.ofSeconds(10), stageMax,
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
     * straight into its pages: staging it would buy no other reply for its copy. With structured replies (a server
     * on another host) and with simple ones (a server on this host, by default).
     */
    @ParameterizedTest(name = "structured replies: {0}")
    @ValueSource(booleans = {true, false})
    void aLoneSmallReadIsStagedAfterCompanyAndReceivedStraightIntoItsPagesWhenAlone(boolean structured)
            throws Exception {
        open(DeviceConfig.DEFAULT_STAGE_READS_MAX, structured ? HandshakeConfig.go("") : HandshakeConfig.goSimple(""));
        MemorySegment buf = h.arena.allocate(4096);
        byte[] want = new byte[4096];
        java.util.Arrays.fill(want, (byte) 0x3c);
        long fewestTurns = Long.MAX_VALUE;
        for (int i = 0; i < 4; i++) {
            long staged = h.link(l -> l.counters().stagedBytes());
            long receives = h.link(l -> l.counters().headerReceives());
            long direct = h.link(l -> l.counters().directSends());
            long ringOps = h.link(l -> l.counters().ringOperations());
            buf.fill((byte) 0);
            List<String> frames = alone("4k READ " + i, Command.READ, i * 4096L, 4096, buf);
            assertEquals(1, h.link(l -> l.counters().directSends()) - direct,
                    "its header went to the socket from the loop thread");
            assertEquals(1, h.link(l -> l.counters().headerReceives()) - receives,
                    "one header receive took its reply, armed before it was sent");
            if (i == 0) {
                assertCompletedIn("ReplyPipeline.onHeaderBytes", frames, "a READ after company");
                assertEquals(4096, h.link(l -> l.counters().stagedBytes()) - staged, "its data came with its header");
                assertEquals(1, h.link(l -> l.counters().ringOperations()) - ringOps,
                        "the ring did nothing for it but re-arm the idle receive (no SEND whose completion returns "
                                + "the loop)");
            } else {
                assertCompletedIn("DataLanding.onData", frames, "a READ after lone requests");
                fewestTurns = Math.min(fewestTurns, turns);
                assertEquals(0, h.link(l -> l.counters().stagedBytes()) - staged,
                        "a lone READ's data was staged (copied from the header buffer)");
                assertEquals(2, h.link(l -> l.counters().ringOperations()) - ringOps,
                        "the ring re-armed the idle receive and received its data into its buffer");
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
     * After lone requests the idle link's receive is armed from a loop task, not at once: it must still be armed, so
     * that the link notices its server going away with no request to find out.
     */
    @Test
    void anIdleLinkAfterLoneRequestsNoticesTheServerGoingAway() throws Exception {
        open(DeviceConfig.DEFAULT_STAGE_READS_MAX);
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
