package io.nbdgate.gateway.nbd.client;

import static io.nbdgate.gateway.testsupport.Await.failure;
import static io.nbdgate.gateway.testsupport.Await.result;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.nbdgate.gateway.testsupport.ExternalNbdServer;
import io.nbdgate.protocol.ExportInfo;
import io.nbdgate.protocol.NbdError;
import io.vertx.core.Vertx;
import io.vertx.core.buffer.Buffer;
import io.vertx.junit5.VertxExtension;
import java.nio.file.Path;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.io.TempDir;

/**
 * nbdkit --filter=blocksize-policy with blocksize-error-policy=error: the server fails any request that
 * breaks its limits, so a successful large transfer proves the client split and aligned it.
 */
@ExtendWith(VertxExtension.class)
class NbdkitBlocksizePolicyInteropTest {

    @TempDir
    Path dir;

    @Test
    void limitsAreReportedAndObeyed(Vertx vertx) throws Exception {
        try (var server = ExternalNbdServer.nbdkit(dir, List.of("--filter=blocksize-policy"), "memory", "size=16M",
                "blocksize-minimum=4096", "blocksize-preferred=65536", "blocksize-maximum=131072",
                "blocksize-error-policy=error")) {
            NbdClient c = result(NbdClient.connect(vertx, server.uri(), NbdClient.Options.defaults()));
            ExportInfo e = c.export();
            assertTrue(e.blockSizeAdvertised());
            assertEquals(4096, e.minimumBlock());
            assertEquals(65536, e.preferredBlock());
            assertEquals(131072, e.maximumPayload());

            byte[] data = new byte[1 << 20]; // 8 times the maximum payload
            new Random(7).nextBytes(data);
            result(c.write(4096, Buffer.buffer(data), false));
            assertArrayEquals(data, result(c.read(4096, data.length)).getBytes());

            var misaligned = assertInstanceOf(NbdCommandException.class, failure(c.read(512, 4096)));
            assertEquals(NbdError.EINVAL, misaligned.error());
            assertTrue(misaligned.local());
            result(c.disconnect());
        }
    }
}
