package io.nbdgate.gateway.session;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
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
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A lone WRITE in zero copy (queue depth 1: an fsync's journal block) sends its payload from registered pages by
 * a SEND that posts no completion unless it fails, so the loop is not brought back for the send; its reply
 * completes it. A plain SEND from a fixed buffer is Linux 7.2's, hence the guest; no device is needed: the
 * pages are this process's memory, registered in the loop's ring as ublk registers a request's. nbdkit over TCP.
 */
@Tag("ublk")
class LoneWriteGuestTest {
    @TempDir
    Path dir;

    @Test
    void aLoneZeroCopyWriteSendsItsPayloadWithoutACompletion() throws Exception {
        try (SessionHarness h = new SessionHarness()) {
            ExternalNbdServer server = h.serving(ExternalNbdServer.nbdkit(dir, List.of(), "memory", "64M"));
            h.open(server.socketAddress(), HandshakeConfig.go(""), 8, Duration.ofSeconds(10),
                    DeviceConfig.DEFAULT_STAGE_READS_MAX, ReconnectPolicy.of(Duration.ofMinutes(1)));
            Object firstLink = h.onLoop(() -> h.session.link());
            MemorySegment pages = h.arena.allocate(8 * 4096L, 4096);
            int index = h.registerFixed(pages);
            long fewestTurns = Long.MAX_VALUE;
            for (int i = 0; i < 4; i++) {
                MemorySegment page = pages.asSlice(i * 4096L, 4096);
                page.fill((byte) (0x50 + i));
                long silent = h.link(l -> l.counters().silentSends());
                long direct = h.link(l -> l.counters().directSends());
                long ringOps = h.link(l -> l.counters().ringOperations());
                CompletableFuture<Integer> done = h.expect(0);
                long offset = i * 4096L;
                CompletableFuture<Long> submitTurn = new CompletableFuture<>();
                h.loop.execute(() -> {
                    submitTurn.complete(QuietUringTransport.turns(h.loop));
                    h.submitFixedNow(0, Command.WRITE, offset, 4096, index, page.address());
                });
                assertEquals(4096, done.get(10, TimeUnit.SECONDS), "WRITE " + i);
                fewestTurns = Math.min(fewestTurns, h.completedTurn.get(0) - submitTurn.get());
                assertEquals(1, h.link(l -> l.counters().silentSends()) - silent,
                        "WRITE " + i + ": its payload went without a completion");
                assertEquals(1, h.link(l -> l.counters().directSends()) - direct,
                        "WRITE " + i + ": its header went by send(2)");
                assertEquals(1, h.link(l -> l.counters().ringOperations()) - ringOps,
                        "WRITE " + i + ": the link's ring did nothing for it but re-arm the idle receive (no SEND "
                                + "whose completion returns the loop)");
            }
            // The loop's turn after the one that submitted a lone WRITE waits for its reply and completes it: no
            // send completion brings the loop round once more. (The fewest of four: the link's timeout ticker wakes
            // the loop once a second, which may put a turn in between.)
            assertEquals(1, fewestTurns, "lone WRITEs took more than the turn their replies came in");
            MemorySegment back = h.arena.allocate(4 * 4096L);
            assertEquals(4 * 4096, h.submit(0, Command.READ, 0, 0, 4 * 4096L, back).get(10, TimeUnit.SECONDS));
            for (int i = 0; i < 4; i++) {
                byte[] want = new byte[4096];
                Arrays.fill(want, (byte) (0x50 + i));
                assertArrayEquals(want, back.asSlice(i * 4096L, 4096).toArray(ValueLayout.JAVA_BYTE), "page " + i);
            }

            // With company the WRITEs go on the ring as a chain whose completions count, none silently.
            long silent = h.link(l -> l.counters().silentSends());
            List<CompletableFuture<Integer>> writes = new ArrayList<>();
            for (int t = 0; t < 8; t++) {
                writes.add(h.expect(t));
            }
            h.loop.execute(() -> {
                for (int t = 0; t < 8; t++) {
                    h.submitFixedNow(t, Command.WRITE, t * 4096L, 4096, index, pages.address() + t * 4096L);
                }
            });
            for (CompletableFuture<Integer> w : writes) {
                assertEquals(4096, w.get(10, TimeUnit.SECONDS));
            }
            assertEquals(silent, h.link(l -> l.counters().silentSends()), "a WRITE with company went silently");
            assertSame(firstLink, h.onLoop(() -> h.session.link()), "the link was lost and made again");
            assertEquals(0, h.strayCompletions.get(), "a request completed twice");
        }
    }

    /**
     * A WRITE that comes while a lone WRITE awaits its reply does not wait for that reply: once the loop has turned
     * to the ring since the silent payload was queued, that payload is known to have gone (its failure would have
     * been handled in that turn), and the next chain goes. nbdkit delays every write by 2 s, so a second WRITE
     * held back until the first's reply would complete 2 s after it.
     */
    @Test
    void aWriteBehindALoneWriteDoesNotWaitForItsReply() throws Exception {
        try (SessionHarness h = new SessionHarness()) {
            ExternalNbdServer server = h.serving(ExternalNbdServer.nbdkit(dir, List.of("--filter=delay"), "memory",
                    "64M", "delay-write=2000ms"));
            h.open(server.socketAddress(), HandshakeConfig.go(""), 8, Duration.ofSeconds(10),
                    DeviceConfig.DEFAULT_STAGE_READS_MAX, ReconnectPolicy.of(Duration.ofMinutes(1)));
            MemorySegment pages = h.arena.allocate(2 * 4096L, 4096);
            pages.fill((byte) 0x6e);
            int index = h.registerFixed(pages);
            long silent = h.link(l -> l.counters().silentSends());
            CompletableFuture<Integer> first = h.expect(0);
            h.loop.execute(() -> h.submitFixedNow(0, Command.WRITE, 0, 4096, index, pages.address()));
            h.onLoop(() -> null); // a task behind it: the loop has turned to the ring since, the payload went
            CompletableFuture<Integer> second = h.expect(1);
            h.loop.execute(() -> h.submitFixedNow(1, Command.WRITE, 4096, 4096, index, pages.address() + 4096));
            assertEquals(4096, first.get(10, TimeUnit.SECONDS));
            long firstDone = System.nanoTime();
            assertEquals(4096, second.get(10, TimeUnit.SECONDS));
            long apart = (System.nanoTime() - firstDone) / 1_000_000;
            assertEquals(1, h.link(l -> l.counters().silentSends()) - silent, "the first WRITE went silently");
            assertTrue(apart < 1000, "the second WRITE waited for the first one's reply: it completed " + apart
                    + " ms after it");
        }
    }
}
