package io.nbdgate.gateway.nbd.server;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.nbdgate.gateway.nbd.client.NbdClient;
import io.nbdgate.gateway.nbd.client.NbdCommandException;
import io.nbdgate.gateway.nbd.client.NbdUri;
import io.nbdgate.protocol.NbdError;
import io.nbdgate.protocol.TransmissionMode;
import io.vertx.core.Vertx;
import io.vertx.core.buffer.Buffer;
import io.vertx.junit5.VertxExtension;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.CompletionException;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;
import org.junit.jupiter.api.extension.ExtendWith;

/**
 * The gateway's own NBD client against the embedded server in each transmission mode; the only
 * client here that speaks extended headers (qemu 7.2 and libnbd 1.14 predate them).
 */
@ExtendWith(VertxExtension.class)
class GatewayClientTest {
    EmbeddedNbdServer server;

    @BeforeEach
    void deploy(Vertx vertx) throws Exception {
        server = EmbeddedNbdServer.deploy(vertx, NbdServerConfig.tcp("127.0.0.1", 0,
                List.of(Export.memory("disk", 8 << 20, false), Export.memory("ro", 1 << 20, true)))).await(10, TimeUnit.SECONDS);
    }

    @AfterEach
    void undeploy() throws Exception {
        server.close();
    }

    static NbdClient.Options options(TransmissionMode mode) {
        return new NbdClient.Options(mode == TransmissionMode.EXTENDED, mode != TransmissionMode.SIMPLE, 10_000, 64, 30_000);
    }

    @ParameterizedTest
    @EnumSource(TransmissionMode.class)
    void writeReadTrimZeroes_inEveryMode(TransmissionMode mode, Vertx vertx) throws Exception {
        NbdClient c = NbdClient.connect(vertx, NbdUri.parse(server.uri("disk")), options(mode)).await(10, TimeUnit.SECONDS);
        try {
            assertEquals(mode, c.export().mode());
            byte[] data = new byte[3 << 20];
            new java.util.Random(1).nextBytes(data);
            c.write(1 << 20, Buffer.buffer(data), true).await(10, TimeUnit.SECONDS);
            assertArrayEquals(data, c.read(1 << 20, data.length).await(10, TimeUnit.SECONDS).getBytes());
            c.trim(1 << 20, 1 << 20, false).await(10, TimeUnit.SECONDS);
            c.writeZeroes(2 << 20, 4096, true, true, false).await(10, TimeUnit.SECONDS);
            c.flush().await(10, TimeUnit.SECONDS);
            byte[] expected = Arrays.copyOfRange(data, 1 << 20, 3 << 20);
            Arrays.fill(expected, 0, 4096, (byte) 0);
            // Holes come back as OFFSET_HOLE chunks in structured and extended modes.
            assertArrayEquals(expected, c.read(2 << 20, 2 << 20).await(10, TimeUnit.SECONDS).getBytes());
            assertArrayEquals(expected, c.read(2 << 20, 2 << 20).await(10, TimeUnit.SECONDS).getBytes(), "second read");
        } finally {
            c.disconnect().await(10, TimeUnit.SECONDS);
        }
    }

    @ParameterizedTest
    @EnumSource(TransmissionMode.class)
    void writeToReadOnly_isEPERM_inEveryMode(TransmissionMode mode, Vertx vertx) throws Exception {
        NbdClient c = NbdClient.connect(vertx, NbdUri.parse(server.uri("ro")), options(mode)).await(10, TimeUnit.SECONDS);
        try {
            Throwable t = null;
            try {
                c.write(0, Buffer.buffer(new byte[512]), false).await(10, TimeUnit.SECONDS);
            } catch (Throwable e) {
                t = e instanceof CompletionException && e.getCause() != null ? e.getCause() : e;
            }
            assertTrue(t instanceof NbdCommandException, String.valueOf(t));
            // The client may refuse locally because the export is READ_ONLY; either way it is EPERM.
            assertEquals(NbdError.EPERM, ((NbdCommandException) t).error());
        } finally {
            c.disconnect().await(10, TimeUnit.SECONDS);
        }
    }
}
