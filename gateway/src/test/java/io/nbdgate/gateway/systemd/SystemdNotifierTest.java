package io.nbdgate.gateway.systemd;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.nbdgate.uring.Errno;
import io.nbdgate.uring.LinuxCalls;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * sd_notify's protocol against a real notify socket: an AF_UNIX datagram socket bound by the test, at a path
 * and in the abstract namespace, as systemd creates them. systemd-notify (systemd's own sender) first proves
 * the test's socket is one systemd's tools talk to.
 */
class SystemdNotifierTest {
    @TempDir
    Path dir;

    private int receiver = -1;

    @AfterEach
    void close() {
        if (receiver >= 0) {
            LinuxCalls.close(receiver);
        }
    }

    private String bind(String address) throws Exception {
        receiver = LinuxCalls.unixDatagramSocket();
        LinuxCalls.bindUnix(receiver, address);
        return address;
    }

    /** Every datagram queued now, waiting up to 10 s for the first. */
    private List<String> received() throws Exception {
        List<String> out = new ArrayList<>();
        byte[] buf = new byte[4096];
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
        while (true) {
            int n = LinuxCalls.receiveNow(receiver, buf);
            if (n >= 0) {
                out.add(new String(buf, 0, n, StandardCharsets.UTF_8));
            } else if (n != -Errno.EAGAIN) {
                throw new AssertionError("recv: errno " + -n);
            } else if (!out.isEmpty() || System.nanoTime() > deadline) {
                return out;
            } else {
                Thread.sleep(20);
            }
        }
    }

    @Test
    void systemdsOwnSenderReachesTheTestSocket() throws Exception {
        String socket = bind(dir.resolve("notify").toString());
        ProcessBuilder pb = new ProcessBuilder("systemd-notify", "--no-block", "--status=from systemd-notify").redirectErrorStream(true);
        pb.environment().put("NOTIFY_SOCKET", socket);
        Process p = pb.start();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertTrue(p.waitFor(30, TimeUnit.SECONDS));
        assertEquals(0, p.exitValue(), out);
        assertTrue(received().stream().anyMatch(m -> m.contains("STATUS=from systemd-notify")));
    }

    @Test
    void readyStatusWatchdogAndStoppingReachAPathSocket() throws Exception {
        String socket = bind(dir.resolve("notify").toString());
        try (SystemdNotifier n = new SystemdNotifier(socket, Duration.ofSeconds(4))) {
            n.status("attaching data (1 of 2)");
            assertEquals(List.of("STATUS=attaching data (1 of 2)"), received());
            n.ready("1 of 2 devices live: data /dev/ublkb0 live, logs not attached");
            assertEquals(List.of("READY=1\nSTATUS=1 of 2 devices live: data /dev/ublkb0 live, logs not attached"),
                    received());
            n.watchdogPing();
            assertEquals(List.of("WATCHDOG=1"), received());
            n.stopping("stopping: detaching 1 device(s)");
            assertEquals(List.of("STOPPING=1\nSTATUS=stopping: detaching 1 device(s)"), received());
        }
    }

    @Test
    void anAbstractSocketIsNamedWithAnAt() throws Exception {
        String socket = bind("@nbdgate-test-" + ProcessHandle.current().pid() + "-" + System.nanoTime());
        try (SystemdNotifier n = new SystemdNotifier(socket, null)) {
            n.ready("up");
            assertEquals(List.of("READY=1\nSTATUS=up"), received());
        }
    }

    @Test
    void anUnchangedStatusIsNotSentAgain() throws Exception {
        String socket = bind(dir.resolve("notify").toString());
        try (SystemdNotifier n = new SystemdNotifier(socket, null)) {
            n.ready("1 of 1 device live: a /dev/ublkb0 live");
            received();
            n.status("1 of 1 device live: a /dev/ublkb0 live");
            n.status("0 of 1 device live: a /dev/ublkb0 server lost");
            assertEquals(List.of("STATUS=0 of 1 device live: a /dev/ublkb0 server lost"), received());
        }
    }

    @Test
    void theEnvironmentDecides() {
        SystemdNotifier off = SystemdNotifier.fromEnvironment(Map.of(), 42);
        assertFalse(off.enabled());
        off.ready("nobody listens"); // a no-op, not an error
        SystemdNotifier on = SystemdNotifier.fromEnvironment(
                Map.of("NOTIFY_SOCKET", "/run/x", "WATCHDOG_USEC", "4000000", "WATCHDOG_PID", "42"), 42);
        assertTrue(on.enabled());
        assertEquals(Duration.ofSeconds(4), on.watchdog());
        // The watchdog was meant for another process (we inherited the variables): no pings from us.
        assertNull(SystemdNotifier.fromEnvironment(
                Map.of("NOTIFY_SOCKET", "/run/x", "WATCHDOG_USEC", "4000000", "WATCHDOG_PID", "7"), 42).watchdog());
        assertNull(SystemdNotifier.fromEnvironment(Map.of("WATCHDOG_USEC", "4000000"), 42).watchdog());
    }

    @Test
    void theStatusLineCountsLiveDevicesAndNamesEach() {
        assertEquals("1 of 3 devices live: a /dev/ublkb0 live, b /dev/ublkb1 server lost, c not attached",
                ServiceStatus.line(List.of(new ServiceStatus.Device("a", "/dev/ublkb0", "live"),
                        new ServiceStatus.Device("b", "/dev/ublkb1", "server lost"),
                        new ServiceStatus.Device("c", null, "not attached"))));
        assertEquals("1 of 1 device live: a /dev/ublkb0 live",
                ServiceStatus.line(List.of(new ServiceStatus.Device("a", "/dev/ublkb0", "live"))));
    }
}
