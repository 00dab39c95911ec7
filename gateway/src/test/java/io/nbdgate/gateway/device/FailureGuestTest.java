package io.nbdgate.gateway.device;

import static io.nbdgate.gateway.device.GuestProcesses.exec;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.nbdgate.gateway.config.ZeroCopy;
import io.nbdgate.gateway.testsupport.ExternalNbdServer;
import java.net.InetSocketAddress;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Server errors and a server that is gone for good: errors reach the reader, and nothing hangs. (A server that
 * comes back is ReconnectGuestTest's.)
 */
class FailureGuestTest extends DeviceGuestTestBase {
    @TempDir
    Path dir;




    private NbdDevice attach(ExternalNbdServer server, Duration ioTimeout, Duration reconnectTimeout) throws Exception {
        DeviceOptions o = new DeviceOptions("failure", new InetSocketAddress("127.0.0.1", server.port()), "", 1,
                16, ZeroCopy.AUTO, false, -1, Duration.ofSeconds(10), ioTimeout, null);
        attach(o.withReconnectTimeout(reconnectTimeout));
        return device;
    }

    private static GuestProcesses.Result readDirect(String dev) throws Exception {
        return exec("dd", "if=" + dev, "of=/dev/null", "bs=64k", "count=16", "iflag=direct");
    }

    @Test
    void serverErrorsReachTheReaderAndTheDeviceRecoversWhenTheyStop() throws Exception {
        Path trigger = dir.resolve("errors-on");
        Files.createFile(trigger);
        try (ExternalNbdServer server = ExternalNbdServer.nbdkit(dir, List.of("--filter=error"), "memory",
                "size=64M", "error=EIO", "error-pread-rate=100%", "error-pread-file=" + trigger)) {
            attach(server, Duration.ofSeconds(30), Duration.ofMinutes(5));
            GuestProcesses.Result failing = readDirect(device.blockDevice());
            assertNotEquals(0, failing.exit(), "reads must fail while the server returns EIO");
            assertTrue(failing.output().contains("Input/output error"), failing.output());
            GuestProcesses.Result fio = exec("fio", "--name=eio", "--filename=" + device.blockDevice(),
                    "--allow_file_create=0", "--rw=randread", "--bs=4k", "--direct=1", "--ioengine=io_uring",
                    "--size=1M", "--output-format=terse");
            assertNotEquals(0, fio.exit(), "fio must see the error: " + fio.output());
            Files.delete(trigger);
            assertEquals(0, readDirect(device.blockDevice()).exit(), "the device works again once errors stop");
            assertTrue(device.healthy(), "server errors are not a lost connection");
        }
    }

    @Test
    void serverGoneForGoodMeansIoErrorsPastTheReconnectTimeoutAndDetachStillWorks() throws Exception {
        ExternalNbdServer server = ExternalNbdServer.nbdkit(dir, List.of(), "memory", "64M");
        attach(server, Duration.ofSeconds(3), Duration.ofSeconds(4));
        server.kill();
        long t0 = System.nanoTime();
        GuestProcesses.Result r = readDirect(device.blockDevice());
        long seconds = TimeUnit.NANOSECONDS.toSeconds(System.nanoTime() - t0);
        assertNotEquals(0, r.exit(), "reads from a server that never comes back must fail");
        assertTrue(seconds >= 3 && seconds < 30, "failed after " + seconds + " s; the reconnect timeout is 4 s");
        assertTrue(!device.healthy());
        assertTrue(device.stateSummary().startsWith("failed"), device.stateSummary());
        long d0 = System.nanoTime();
        device.close();
        device = null;
        long detach = TimeUnit.NANOSECONDS.toSeconds(System.nanoTime() - d0);
        assertTrue(detach < 15, "detach took " + detach + " s");
    }

    @Test
    void serverThatNeverAnswersMeansIoErrorsAfterTheReconnectTimeout() throws Exception {
        try (ExternalNbdServer server = ExternalNbdServer.nbdkit(dir, List.of("--filter=delay"), "memory", "64M",
                "rdelay=120")) {
            attach(server, Duration.ofSeconds(2), Duration.ofSeconds(4));
            long t0 = System.nanoTime();
            GuestProcesses.Result r = readDirect(device.blockDevice());
            long seconds = TimeUnit.NANOSECONDS.toSeconds(System.nanoTime() - t0);
            assertNotEquals(0, r.exit(), r.output());
            assertTrue(seconds >= 4 && seconds < 60, "failed after " + seconds + " s; io 2 s, reconnect 4 s");
            assertTrue(device.reconnects() >= 1, "the unanswered request ended its connection first");
        }
    }
}
