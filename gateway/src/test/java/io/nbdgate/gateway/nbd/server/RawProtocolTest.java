package io.nbdgate.gateway.nbd.server;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.nbdgate.protocol.Command;
import io.nbdgate.protocol.CommandFlag;
import io.nbdgate.protocol.NbdError;
import io.nbdgate.protocol.NbdOption;
import io.nbdgate.protocol.ReplyType;
import io.vertx.core.Vertx;
import io.vertx.junit5.VertxExtension;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

/**
 * Error values and connection handling that real clients never provoke, probed with hand-made
 * bytes against the server deployed on the test's Vert.x.
 */
@ExtendWith(VertxExtension.class)
class RawProtocolTest {
    static final int SIZE = 1 << 20;

    EmbeddedNbdServer server;

    @BeforeEach
    void deploy(Vertx vertx) throws Exception {
        server = EmbeddedNbdServer.deploy(vertx, NbdServerConfig.tcp("127.0.0.1", 0,
                List.of(Export.memory("rw", SIZE, false), Export.memory("ro", SIZE, true)))).await(10, TimeUnit.SECONDS);
    }

    @AfterEach
    void undeploy() throws Exception {
        server.close();
    }

    RawNbdClient client(String export) throws Exception {
        return new RawNbdClient(server.port()).go(export);
    }

    static int READ = Command.READ.code(), WRITE = Command.WRITE.code(), TRIM = Command.TRIM.code(),
            ZEROES = Command.WRITE_ZEROES.code(), DISC = Command.DISC.code(), FLUSH = Command.FLUSH.code();

    @Test
    void readBeyondTheEnd_EINVAL_andTheConnectionLivesOn() throws Exception {
        try (RawNbdClient c = client("rw")) {
            c.request(READ, 0, 1, SIZE - 512, 1024, null);
            assertEquals(new RawNbdClient.SimpleReply(NbdError.EINVAL.code(), 1), c.simpleReply());
            c.request(READ, 0, 2, 0, 4, null);
            assertEquals(new RawNbdClient.SimpleReply(0, 2), c.simpleReply());
            assertArrayEquals(new byte[4], c.in.readNBytes(4));
        }
    }

    @Test
    void hugeOffset_isBeyondTheEnd_notANegativeNumber() throws Exception {
        try (RawNbdClient c = client("rw")) {
            c.request(READ, 0, 1, -4096L, 4096, null);
            assertEquals(NbdError.EINVAL.code(), c.simpleReply().error());
        }
    }

    @Test
    void writeAndZeroesBeyondTheEnd_ENOSPC() throws Exception {
        try (RawNbdClient c = client("rw")) {
            c.request(WRITE, 0, 1, SIZE - 2, 4, new byte[4]);
            assertEquals(NbdError.ENOSPC.code(), c.simpleReply().error());
            c.request(ZEROES, 0, 2, SIZE, 1, null);
            assertEquals(NbdError.ENOSPC.code(), c.simpleReply().error());
        }
    }

    @Test
    void writesToReadOnlyExport_EPERM() throws Exception {
        try (RawNbdClient c = client("ro")) {
            c.request(WRITE, 0, 1, 0, 4, new byte[4]);
            assertEquals(NbdError.EPERM.code(), c.simpleReply().error());
            c.request(TRIM, 0, 2, 0, 4096, null);
            assertEquals(NbdError.EPERM.code(), c.simpleReply().error());
            c.request(ZEROES, 0, 3, 0, 4096, null);
            assertEquals(NbdError.EPERM.code(), c.simpleReply().error());
            c.request(READ, 0, 4, 0, 4096, null);
            assertEquals(0, c.simpleReply().error());
        }
    }

    @Test
    void unknownCommandAndMisplacedFlags_EINVAL() throws Exception {
        try (RawNbdClient c = client("rw")) {
            c.request(42, 0, 1, 0, 0, null);
            assertEquals(NbdError.EINVAL.code(), c.simpleReply().error());
            c.request(READ, CommandFlag.NO_HOLE, 2, 0, 512, null);
            assertEquals(NbdError.EINVAL.code(), c.simpleReply().error());
            c.request(READ, CommandFlag.DF, 3, 0, 512, null);
            assertEquals(NbdError.EINVAL.code(), c.simpleReply().error());
        }
    }

    @Test
    void oversizeRead_EINVALWithSimpleReplies_EOVERFLOWChunkWithStructured() throws Exception {
        server.close();
        server = EmbeddedNbdServer.start(NbdServerConfig.tcp("127.0.0.1", 0, List.of(Export.memory("big", 64L << 20, false))));
        try (RawNbdClient c = client("big")) {
            c.request(READ, 0, 1, 0, 33 << 20, null);
            assertEquals(NbdError.EINVAL.code(), c.simpleReply().error());
        }
        try (RawNbdClient c = new RawNbdClient(server.port()).structuredReplies().go("big")) {
            c.request(READ, 0, 1, 0, 33 << 20, null);
            RawNbdClient.Chunk e = c.chunk();
            assertEquals(ReplyType.ERROR.code(), e.type());
            assertEquals(ReplyType.FLAG_DONE, e.flags());
            assertEquals(NbdError.EOVERFLOW.code(), e.error());
        }
    }

    @Test
    void structuredRead_holesAsOffsetHole_dataAsOffsetData() throws Exception {
        try (RawNbdClient c = new RawNbdClient(server.port()).structuredReplies().go("rw")) {
            byte[] data = new byte[4096];
            Arrays.fill(data, (byte) 7);
            c.request(WRITE, 0, 1, 65536, 4096, data);
            assertEquals(0, c.simpleReply().error());
            c.request(READ, 0, 2, 0, 2 * 65536, null);
            RawNbdClient.Chunk hole = c.chunk();
            assertEquals(ReplyType.OFFSET_HOLE.code(), hole.type());
            ByteBuffer h = ByteBuffer.wrap(hole.payload());
            assertEquals(0, h.getLong());
            assertEquals(65536, h.getInt());
            RawNbdClient.Chunk d = c.chunk();
            assertEquals(ReplyType.OFFSET_DATA.code(), d.type());
            assertEquals(ReplyType.FLAG_DONE, d.flags());
            ByteBuffer p = ByteBuffer.wrap(d.payload());
            assertEquals(65536, p.getLong());
            assertEquals(65536, p.remaining());
            assertEquals(7, p.get());
        }
    }

    @Test
    void manyRequestsInFlight_allAnsweredByCookie() throws Exception {
        try (RawNbdClient c = client("rw")) {
            for (int i = 0; i < 100; i++) c.request(i % 2 == 0 ? READ : FLUSH, 0, 1000 + i, 0, i % 2 == 0 ? 512 : 0, null);
            Set<Long> cookies = new HashSet<>();
            for (int i = 0; i < 100; i++) {
                RawNbdClient.SimpleReply r = c.simpleReply();
                assertEquals(0, r.error());
                cookies.add(r.cookie());
                if (r.cookie() % 2 == 0) c.in.readNBytes(512);
            }
            assertEquals(100, cookies.size());
        }
    }

    @Test
    void disc_answersWhatIsInFlightThenCloses() throws Exception {
        try (RawNbdClient c = client("rw")) {
            c.request(WRITE, CommandFlag.FUA, 1, 0, 4, new byte[] {1, 2, 3, 4});
            c.request(DISC, 0, 2, 0, 0, null);
            assertEquals(new RawNbdClient.SimpleReply(0, 1), c.simpleReply());
            assertTrue(c.closedByServer(), "server closes after NBD_CMD_DISC");
        }
        try (RawNbdClient c = client("rw")) {
            c.request(READ, 0, 3, 0, 4, null);
            c.simpleReply();
            assertArrayEquals(new byte[] {1, 2, 3, 4}, c.in.readNBytes(4), "the write before DISC was done");
        }
    }

    @Test
    void badRequestMagic_closesTheConnection() throws Exception {
        try (RawNbdClient c = client("rw")) {
            c.out.write(new byte[28]);
            c.out.flush();
            assertTrue(c.closedByServer());
        }
    }

    @Test
    void writePayloadOverTheMaximum_closesTheConnection() throws Exception {
        try (RawNbdClient c = client("rw")) {
            c.request(WRITE, 0, 1, 0, (32 << 20) + 1, null);
            assertTrue(c.closedByServer());
        }
    }

    @Test
    void exportNameForUnknownExport_closes_goForUnknownExport_errUnknown() throws Exception {
        try (RawNbdClient c = new RawNbdClient(server.port())) {
            c.option(NbdOption.GO, ByteBuffer.allocate(10).putInt(4).put("nope".getBytes(StandardCharsets.UTF_8)).putShort((short) 0).array());
            assertEquals(io.nbdgate.protocol.OptionReplyType.ERR_UNKNOWN.code(), c.finalOptionReply());
            c.option(NbdOption.EXPORT_NAME, "nope".getBytes(StandardCharsets.UTF_8));
            assertTrue(c.closedByServer());
        }
    }

    @Test
    void fastZeroOnMemory_succeedsAndReadsBackZero() throws Exception {
        try (RawNbdClient c = client("rw")) {
            c.request(WRITE, 0, 1, 0, 8, new byte[] {9, 9, 9, 9, 9, 9, 9, 9});
            c.simpleReply();
            c.request(ZEROES, CommandFlag.FAST_ZERO | CommandFlag.NO_HOLE, 2, 0, 8, null);
            assertEquals(0, c.simpleReply().error());
            c.request(READ, 0, 3, 0, 8, null);
            c.simpleReply();
            assertArrayEquals(new byte[8], c.in.readNBytes(8));
        }
    }

    @Test
    void garbageAfterABadHandshake_isIgnored_andTheServerKeepsServing() throws Exception {
        try (RawNbdClient c = new RawNbdClient(server.port())) {
            c.out.write(new byte[64]); // bad option magic, then more bytes in the same burst
            c.out.flush();
            assertTrue(c.closedByServer());
        }
        try (RawNbdClient c = client("rw")) {
            c.request(READ, 0, 1, 0, 1, null);
            assertEquals(0, c.simpleReply().error());
        }
    }

    @Test
    void closingTheServer_dropsOpenConnections() throws Exception {
        RawNbdClient c = client("rw");
        try (c) {
            server.close();
            assertTrue(c.closedByServer(), "an open connection ends when the server is closed");
        } finally {
            server = EmbeddedNbdServer.start(NbdServerConfig.tcp("127.0.0.1", 0, List.of(Export.memory("rw", SIZE, false))));
        }
    }
}
