package io.nbdgate.gateway.nbd.client;

import static io.nbdgate.gateway.testsupport.Await.failure;
import static io.nbdgate.gateway.testsupport.Await.result;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.nbdgate.gateway.testsupport.ExternalNbdServer;
import io.nbdgate.protocol.ExportInfo;
import io.nbdgate.protocol.NbdError;
import io.nbdgate.protocol.TransmissionMode;
import io.nbdgate.protocol.client.ExportEntry;
import io.vertx.core.Future;
import io.vertx.core.Vertx;
import io.vertx.core.buffer.Buffer;
import io.vertx.junit5.VertxExtension;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.io.TempDir;

/** The client against nbdkit's memory plugin (structured replies, every command). */
@ExtendWith(VertxExtension.class)
class NbdkitMemoryInteropTest {

    static final long SIZE = 64L << 20;

    @TempDir
    Path dir;
    ExternalNbdServer server;
    NbdClient client;

    @BeforeEach
    void start(Vertx vertx) throws Exception {
        server = ExternalNbdServer.nbdkit(dir, List.of(), "memory", "size=" + SIZE);
        client = result(NbdClient.connect(vertx, server.uri(), NbdClient.Options.defaults()));
    }

    @AfterEach
    void stop() {
        if (client != null) {
            result(client.disconnect());
        }
        server.close();
    }

    static byte[] random(long seed, int n) {
        byte[] b = new byte[n];
        new Random(seed).nextBytes(b);
        return b;
    }

    static String sha256(byte[] b) throws Exception {
        return java.util.HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(b));
    }

    @Test
    void handshakeNegotiatesStructuredRepliesAndReportsTheExport() {
        ExportInfo e = client.export();
        assertEquals(SIZE, e.size());
        // nbdkit 1.32 has no extended headers: the client fell back to structured replies.
        assertEquals(TransmissionMode.STRUCTURED, e.mode());
        assertTrue(e.canFlush() && e.canFua() && e.canTrim() && e.canWriteZeroes() && e.canMultiConn() && e.canCache());
        assertFalse(e.readOnly());
    }

    @Test
    void dataRoundTripsWithEqualChecksums() throws Exception {
        byte[] data = random(1, 3 << 20);
        result(client.write(1 << 20, Buffer.buffer(data), false));
        result(client.flush());
        byte[] back = result(client.read(1 << 20, data.length)).getBytes();
        assertEquals(sha256(data), sha256(back));
    }

    @Test
    void manyReadsInFlightCompleteWithTheirOwnData() {
        int n = 48;
        int len = 64 << 10;
        byte[] data = random(2, n * len);
        result(client.write(0, Buffer.buffer(data), true));
        List<Future<Buffer>> reads = new ArrayList<>();
        for (int i = n - 1; i >= 0; i--) {
            reads.add(client.read((long) i * len, len));
        }
        for (int k = 0; k < n; k++) {
            int i = n - 1 - k;
            byte[] expected = java.util.Arrays.copyOfRange(data, i * len, (i + 1) * len);
            assertArrayEquals(expected, result(reads.get(k)).getBytes(), "read " + i);
        }
    }

    @Test
    void trimAndWriteZeroesReadBackAsZeroes() {
        byte[] data = random(3, 1 << 20);
        result(client.write(0, Buffer.buffer(data), false));
        result(client.trim(0, 256 << 10, false));
        result(client.writeZeroes(512 << 10, 256 << 10, true, false, true));
        byte[] back = result(client.read(0, 1 << 20)).getBytes();
        assertArrayEquals(new byte[256 << 10], java.util.Arrays.copyOfRange(back, 0, 256 << 10));
        assertArrayEquals(java.util.Arrays.copyOfRange(data, 256 << 10, 512 << 10),
                java.util.Arrays.copyOfRange(back, 256 << 10, 512 << 10));
        assertArrayEquals(new byte[256 << 10], java.util.Arrays.copyOfRange(back, 512 << 10, 768 << 10));
    }

    @Test
    void sparseReadOfNeverWrittenAreaIsZeroes() {
        // Never-written memory reads as zeroes, whichever chunk types the server picks.
        assertArrayEquals(new byte[1 << 20], result(client.read(SIZE - (1 << 20), 1 << 20)).getBytes());
    }

    @Test
    void fastZeroAndCacheAreAccepted() {
        if (client.export().canFastZero()) {
            result(client.writeZeroes(0, 1 << 20, false, true, false));
        }
        result(client.cache(0, 1 << 20));
    }

    @Test
    void requestBeyondTheExportIsRefusedLocallyWithEinval() {
        var e = assertInstanceOf(NbdCommandException.class, failure(client.read(SIZE - 512, 1024)));
        assertEquals(NbdError.EINVAL, e.error());
        assertTrue(e.local());
    }

    @Test
    void listShowsTheDefaultExport(Vertx vertx) {
        List<ExportEntry> exports = result(NbdClient.list(vertx, server.uri(), NbdClient.Options.defaults()));
        assertEquals(1, exports.size());
        assertEquals("", exports.get(0).name());
    }

    @Test
    void disconnectSendsDiscAndClosesCleanly() {
        result(client.disconnect());
        assertTrue(client.closeFuture().isComplete());
        var e = failure(client.flush());
        assertInstanceOf(NbdConnectionException.class, e);
        client = null;
    }

    @Test
    void unixSocketUri(Vertx vertx) throws Exception {
        Path sub = java.nio.file.Files.createDirectory(dir.resolve("unix"));
        try (var unix = ExternalNbdServer.nbdkitUnix(sub, List.of(), "memory", "size=1M")) {
            NbdUri uri = NbdUri.parse(unix.uri().toString());
            assertTrue(uri.unixSocket());
            NbdClient c = result(NbdClient.connect(vertx, uri, NbdClient.Options.defaults()));
            assertEquals(1 << 20, c.export().size());
            byte[] data = random(9, 4096);
            result(c.write(0, Buffer.buffer(data), false));
            assertArrayEquals(data, result(c.read(0, 4096)).getBytes());
            result(c.disconnect());
        }
    }
}
