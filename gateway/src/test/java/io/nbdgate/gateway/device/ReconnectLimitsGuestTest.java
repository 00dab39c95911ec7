package io.nbdgate.gateway.device;

import static io.nbdgate.gateway.device.GuestProcesses.exec;
import static io.nbdgate.gateway.device.GuestProcesses.run;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import io.nbdgate.gateway.testsupport.ExternalNbdServer;
import io.nbdgate.gateway.testsupport.ServerHost;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/**
 * Where waiting for the server ends: past reconnect-timeout I/O fails with EIO (and works again once the
 * server is back), and a server that comes back with a smaller export is refused.
 */
class ReconnectLimitsGuestTest extends FaultGuestTestBase {
    // Slack over the product's own deadlines: a loaded TCG guest runs ~50x slower than the host.
    private static final long SLACK_SECONDS = 15;

    @Test
    void pastTheReconnectTimeoutIoFailsWithEioThenWorksOnceTheServerIsBack() throws Exception {
        server = ExternalNbdServer.nbdkit(ServerHost.LOOPBACK, dir, List.of(), "file",
                backingFile("export.img", 32 * MIB).toString());
        Duration reconnectTimeout = Duration.ofSeconds(6);
        attach(options(server, 1, Duration.ofSeconds(3), reconnectTimeout));
        String dev = device.blockDevice();
        String[] data = {"--rw=write", "--bs=64k", "--size=8M"};
        try (FioJob before = FioJob.start(dir, device, with(data, "--do_verify=1"))) {
            before.assertClean(Duration.ofMinutes(3));
        }

        server.kill();
        long t0 = System.nanoTime();
        GuestProcesses.Result waiting = readOneBlock(dev);
        long seconds = TimeUnit.NANOSECONDS.toSeconds(System.nanoTime() - t0);
        assertNotEquals(0, waiting.exit(), "a read with no server past reconnect-timeout must fail");
        assertTrue(waiting.output().contains("Input/output error"), waiting.output());
        assertTrue(seconds <= reconnectTimeout.toSeconds() + SLACK_SECONDS, "EIO came after " + seconds + " s");
        long t1 = System.nanoTime();
        GuestProcesses.Result fresh = readOneBlock(dev);
        assertNotEquals(0, fresh.exit(), "new requests past reconnect-timeout fail too");
        assertTrue(TimeUnit.NANOSECONDS.toSeconds(System.nanoTime() - t1) <= SLACK_SECONDS,
                "new requests past reconnect-timeout fail at once");

        server.startAgain();
        awaitReadable(dev, Duration.ofSeconds(60)); // reads fail (and the kernel says so) until it is back
        KernelLog log = KernelLog.mark("server back after reconnect-timeout");
        try (FioJob after = FioJob.start(dir, device, with(data, "--verify_only=1"))) {
            after.assertVerifiedOnly(Duration.ofMinutes(3)); // what was written before the outage is intact
        }
        try (FioJob more = FioJob.start(dir, device, "--rw=randwrite", "--bs=4k", "--offset=8M", "--size=8M",
                "--do_verify=1")) {
            more.assertClean(Duration.ofMinutes(3));
        }
        log.assertNoUblkIoErrors();
    }

    @Test
    void aServerBackWithASmallerExportFailsIoAndNothingIsWrittenPastItsEnd() throws Exception {
        Path file = backingFile("export.img", 32 * MIB);
        server = ExternalNbdServer.nbdkit(ServerHost.LOOPBACK, dir, List.of(), "file", file.toString());
        attach(options(server, 1, Duration.ofSeconds(3), Duration.ofSeconds(20)));
        String dev = device.blockDevice();
        run("dd", "if=/dev/urandom", "of=" + dev, "bs=64k", "count=16", "oflag=direct", "status=none");

        server.kill();
        run("truncate", "-s", "16M", file.toString());
        String shrunk = sha256(file);
        server.startAgain();

        // 24 MiB is inside the device as attached and past the server's new end.
        GuestProcesses.Result past = exec("timeout", "120", "dd", "if=/dev/urandom", "of=" + dev, "bs=64k",
                "count=16", "seek=384", "oflag=direct", "status=none");
        assertNotEquals(0, past.exit(), "a write past the new end must fail");
        assertTrue(past.output().contains("Input/output error"), past.output());
        GuestProcesses.Result inside = readOneBlock(dev);
        assertNotEquals(0, inside.exit(), "the device fails its I/O once the export is not the same");
        assertTrue(device.linkStates().stream().anyMatch(s -> s.lastError() != null
                && s.lastError().toLowerCase(Locale.ROOT).contains("size")), () -> "no link says why: " + links());
        device.close(); // detach works in this state too
        device = null;
        assertEquals(16 * MIB, Files.size(file), "the backing file changed size");
        assertEquals(shrunk, sha256(file), "something was written to the smaller export");
    }

    private static String[] with(String[] args, String... more) {
        String[] all = new String[args.length + more.length];
        System.arraycopy(args, 0, all, 0, args.length);
        System.arraycopy(more, 0, all, args.length, more.length);
        return all;
    }

    /** One direct 4k read, bounded: a hang is a failure of its own, not the suite's. */
    private static GuestProcesses.Result readOneBlock(String dev) throws Exception {
        GuestProcesses.Result r = exec("timeout", "120", "dd", "if=" + dev, "of=/dev/null", "bs=4k", "count=1",
                "iflag=direct", "status=none");
        if (r.exit() == 124) {
            fail("a read of " + dev + " hung for 120 s");
        }
        return r;
    }

    /** The device keeps reconnecting past the timeout: once the server is back, reads succeed again. */
    private void awaitReadable(String dev, Duration timeout) throws Exception {
        long deadline = System.nanoTime() + timeout.toNanos();
        GuestProcesses.Result r;
        while ((r = readOneBlock(dev)).exit() != 0) {
            if (System.nanoTime() > deadline) {
                fail("the device did not serve again within " + timeout + " of the server's return: " + r.output()
                        + " " + links());
            }
            Thread.sleep(500);
        }
    }

    private static String sha256(Path p) throws Exception {
        return run("sha256sum", p.toString()).split(" ")[0];
    }
}
