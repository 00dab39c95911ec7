package io.nbdgate.gateway.nbd.client;

import static io.nbdgate.gateway.testsupport.Await.result;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.nbdgate.gateway.testsupport.ExternalNbdServer;
import io.nbdgate.protocol.ExportInfo;
import io.nbdgate.protocol.TransmissionMode;
import io.vertx.core.Vertx;
import io.vertx.core.buffer.Buffer;
import io.vertx.junit5.VertxExtension;
import java.io.RandomAccessFile;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.io.TempDir;

/** The client against qemu-nbd 10+, which negotiates NBD extended headers (32-byte headers, 64-bit lengths). */
@ExtendWith(VertxExtension.class)
class QemuNbdInteropTest {

    static final long SIZE = 32L << 20;

    @TempDir
    Path dir;

    @Test
    void extendedHeadersAreNegotiatedAndDataRoundTrips(Vertx vertx) throws Exception {
        Path image = dir.resolve("disk.raw");
        try (RandomAccessFile f = new RandomAccessFile(image.toFile(), "rw")) {
            f.setLength(SIZE);
        }
        try (var server = ExternalNbdServer.qemuNbd(dir, image, "disk")) {
            NbdClient c = result(NbdClient.connect(vertx, server.uri(), NbdClient.Options.defaults()));
            ExportInfo e = c.export();
            assertEquals(TransmissionMode.EXTENDED, e.mode(), "qemu-nbd 10 must accept NBD_OPT_EXTENDED_HEADERS");
            assertTrue(e.extendedHeaders());
            assertEquals(SIZE, e.size());
            assertEquals("disk", e.name());
            assertTrue(e.blockSizeAdvertised());

            byte[] data = new byte[2 << 20];
            new Random(5).nextBytes(data);
            result(c.write(1 << 20, Buffer.buffer(data), e.canFua()));
            result(c.flush());
            assertArrayEquals(data, result(c.read(1 << 20, data.length)).getBytes());

            // Zeroing more than 4 GiB would need 64-bit lengths; here a whole-device zero in one request.
            result(c.writeZeroes(0, SIZE, false, false, false));
            long holesBefore = c.holeChunks();
            assertArrayEquals(new byte[1 << 20], result(c.read(2 << 20, 1 << 20)).getBytes());
            // qemu-nbd answers reads of zeroed (sparse) ranges with OFFSET_HOLE chunks.
            assertTrue(c.holeChunks() > holesBefore, "expected OFFSET_HOLE chunks from qemu-nbd");
            result(c.disconnect());

            byte[] onDisk = Arrays.copyOfRange(Files.readAllBytes(image), 1 << 20, 3 << 20);
            assertArrayEquals(new byte[2 << 20], onDisk);
        }
    }

    @Test
    void structuredRepliesStillWorkWhenExtendedHeadersAreNotWanted(Vertx vertx) throws Exception {
        Path image = dir.resolve("disk.raw");
        Files.write(image, new byte[4 << 20]);
        try (var server = ExternalNbdServer.qemuNbd(dir, image, "disk")) {
            NbdClient c = result(NbdClient.connect(vertx, server.uri(), new NbdClient.Options(false, true, 10_000, 16, 30_000)));
            assertEquals(TransmissionMode.STRUCTURED, c.export().mode());
            byte[] data = new byte[65536];
            new Random(6).nextBytes(data);
            result(c.write(0, Buffer.buffer(data), false));
            assertArrayEquals(data, result(c.read(0, data.length)).getBytes());
            result(c.disconnect());
        }
    }
}
