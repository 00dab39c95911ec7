package io.nbdgate.gateway.nbd.client;

import static io.nbdgate.gateway.testsupport.Await.result;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;

import io.nbdgate.gateway.testsupport.Await;
import io.nbdgate.gateway.testsupport.ExternalNbdServer;
import io.nbdgate.protocol.ExportInfo;
import io.nbdgate.protocol.client.ExportEntry;
import io.vertx.core.Vertx;
import io.vertx.core.buffer.Buffer;
import io.vertx.junit5.VertxExtension;
import java.io.RandomAccessFile;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.io.TempDir;

/** The client against the reference nbd-server with a file export (simple replies only). */
@ExtendWith(VertxExtension.class)
class NbdServerInteropTest {

    static final int SIZE = 16 << 20;

    @TempDir
    Path dir;

    @Test
    void fileExportRoundTripsAndLandsInTheFile(Vertx vertx) throws Exception {
        Path file = dir.resolve("disk.img");
        try (RandomAccessFile f = new RandomAccessFile(file.toFile(), "rw")) {
            f.setLength(SIZE);
        }
        try (var server = ExternalNbdServer.nbdServer(dir, file, "disk")) {
            NbdClient c = result(NbdClient.connect(vertx, server.uri(), NbdClient.Options.defaults()));
            ExportInfo e = c.export();
            assertEquals(SIZE, e.size(), "export size; server output: " + server.output());
            assertEquals("disk", e.name());

            byte[] data = new byte[1 << 20];
            new Random(11).nextBytes(data);
            result(c.write(3 << 20, Buffer.buffer(data), true));
            result(c.flush());
            assertArrayEquals(data, result(c.read(3 << 20, data.length)).getBytes());
            result(c.trim(0, 1 << 20, false));
            result(c.disconnect());

            byte[] onDisk = Arrays.copyOfRange(Files.readAllBytes(file), 3 << 20, 4 << 20);
            assertArrayEquals(data, onDisk);
        }
    }

    @Test
    void listsTheConfiguredExportAndRefusesUnknownOnes(Vertx vertx) throws Exception {
        Path file = dir.resolve("disk.img");
        Files.write(file, new byte[1 << 20]);
        try (var server = ExternalNbdServer.nbdServer(dir, file, "disk")) {
            List<ExportEntry> exports = result(NbdClient.list(vertx, server.uri(), NbdClient.Options.defaults()));
            assertEquals(List.of("disk"), exports.stream().map(ExportEntry::name).toList());

            var err = assertInstanceOf(NbdConnectionException.class, Await.failure(
                    NbdClient.connect(vertx, server.uri("nope"), NbdClient.Options.defaults())));
            assertEquals(true, err.getMessage().contains("NBD_REP_ERR_UNKNOWN"), err.getMessage());
        }
    }
}
