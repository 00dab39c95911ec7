package io.nbdgate.gateway.nbd.client;

import static io.nbdgate.gateway.testsupport.Await.failure;
import static io.nbdgate.gateway.testsupport.Await.result;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.nbdgate.gateway.testsupport.ExternalNbdServer;
import io.nbdgate.protocol.NbdError;
import io.vertx.core.Vertx;
import io.vertx.core.buffer.Buffer;
import io.vertx.junit5.VertxExtension;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.io.TempDir;

/** Server-side errors (nbdkit --filter=error) surface as the right errno and leave the connection usable. */
@ExtendWith(VertxExtension.class)
class NbdkitErrorFilterInteropTest {

    @TempDir
    Path dir;

    private ExternalNbdServer errorServer(String... params) throws Exception {
        String[] all = new String[params.length + 1];
        all[0] = "size=16M";
        System.arraycopy(params, 0, all, 1, params.length);
        return ExternalNbdServer.nbdkit(dir, List.of("--filter=error"), "memory", all);
    }

    private static NbdCommandException commandFailure(io.vertx.core.Future<?> f) {
        var e = assertInstanceOf(NbdCommandException.class, failure(f));
        assertFalse(e.local(), "the error must come from the server");
        return e;
    }

    @Test
    void readErrorIsEio(Vertx vertx) throws Exception {
        try (var server = errorServer("error=EIO", "error-pread-rate=100%")) {
            NbdClient c = result(NbdClient.connect(vertx, server.uri(), NbdClient.Options.defaults()));
            assertEquals(NbdError.EIO, commandFailure(c.read(0, 4096)).error());
            assertEquals(5, commandFailure(c.read(4096, 4096)).errno());
            // errors are per request: writes still work on the same connection
            result(c.write(0, Buffer.buffer(new byte[4096]), false));
            result(c.disconnect());
        }
    }

    @Test
    void writeErrorIsEnospc(Vertx vertx) throws Exception {
        try (var server = errorServer("error=ENOSPC", "error-pwrite-rate=100%", "error-zero-rate=100%")) {
            NbdClient c = result(NbdClient.connect(vertx, server.uri(), NbdClient.Options.defaults()));
            assertEquals(NbdError.ENOSPC, commandFailure(c.write(0, Buffer.buffer(new byte[65536]), false)).error());
            assertEquals(NbdError.ENOSPC, commandFailure(c.writeZeroes(0, 65536, false, false, false)).error());
            assertArrayEquals(new byte[4096], result(c.read(0, 4096)).getBytes());
            result(c.disconnect());
        }
    }

    @Test
    void trimErrorIsEperm(Vertx vertx) throws Exception {
        try (var server = errorServer("error=EPERM", "error-trim-rate=100%")) {
            NbdClient c = result(NbdClient.connect(vertx, server.uri(), NbdClient.Options.defaults()));
            assertEquals(NbdError.EPERM, commandFailure(c.trim(0, 65536, false)).error());
            result(c.disconnect());
        }
    }

    @Test
    void errorFileTurnsErrorsOnAndOff(Vertx vertx) throws Exception {
        Path trigger = dir.resolve("inject");
        try (var server = errorServer("error=EIO", "error-pread-rate=100%", "error-pread-file=" + trigger)) {
            NbdClient c = result(NbdClient.connect(vertx, server.uri(), NbdClient.Options.defaults()));
            result(c.read(0, 4096));
            Files.writeString(trigger, "");
            assertEquals(NbdError.EIO, commandFailure(c.read(0, 4096)).error());
            Files.delete(trigger);
            result(c.read(0, 4096));
            result(c.disconnect());
        }
    }

    @Test
    void eshutdownMakesTheClientDisconnectSoftly(Vertx vertx) throws Exception {
        try (var server = errorServer("error=ESHUTDOWN", "error-pread-rate=100%")) {
            NbdClient c = result(NbdClient.connect(vertx, server.uri(), NbdClient.Options.defaults()));
            assertEquals(NbdError.ESHUTDOWN, commandFailure(c.read(0, 4096)).error());
            // The client sends NBD_CMD_DISC itself once nothing is in flight and the socket closes.
            result(c.closeFuture());
            assertTrue(c.closeFuture().succeeded());
            assertInstanceOf(NbdConnectionException.class, failure(c.flush()));
        }
    }
}
