package io.nbdgate.gateway.device;

import static io.nbdgate.gateway.device.GuestProcesses.awaitLines;
import static io.nbdgate.gateway.device.GuestProcesses.exec;
import static io.nbdgate.gateway.device.GuestProcesses.nbdgate;
import static io.nbdgate.gateway.device.GuestProcesses.run;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import io.nbdgate.gateway.testsupport.ExternalNbdServer;
import io.nbdgate.gateway.testsupport.TcpConnections;
import io.nbdgate.ublk.DeviceNodes;
import io.nbdgate.uring.Errno;
import io.nbdgate.uring.LinuxCalls;
import java.net.ServerSocket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.function.Predicate;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * What systemd and fstab rely on, with bin/nbdgate on a real ublk kernel: READY=1 on a real notify socket
 * only once the device is live, STATUS=, WATCHDOG=1, STOPPING=1; and /dev/nbdgate/NAME following attach and
 * detach.
 */
@Tag("ublk")
class OperationsGuestTest {
    private static final Path LINKS = Path.of("/dev/nbdgate");

    @TempDir
    Path dir;

    private Process process;
    private int notifySocket = -1;
    private final List<String> notifications = new ArrayList<>();

    @AfterEach
    void cleanUp() throws Exception {
        if (process != null && process.isAlive()) {
            process.destroy();
            process.waitFor(30, TimeUnit.SECONDS);
        }
        if (notifySocket >= 0) {
            LinuxCalls.close(notifySocket);
        }
        assertTrue(DeviceNodes.presentDevices().isEmpty(), "ublk devices left behind: " + DeviceNodes.presentDevices());
    }

    /** Reads datagrams until one matches; everything read is kept in {@link #notifications}. */
    private String awaitNotification(Predicate<String> wanted, Path err) throws Exception {
        byte[] buf = new byte[4096];
        for (int i = 0; i < 1800; i++) { // 180 s: a JVM under TCG is slow to start
            int n = LinuxCalls.receiveNow(notifySocket, buf);
            if (n >= 0) {
                String m = new String(buf, 0, n, StandardCharsets.UTF_8);
                notifications.add(m);
                if (wanted.test(m)) {
                    return m;
                }
                continue;
            }
            assertEquals(-Errno.EAGAIN, n, "recv on the notify socket");
            // Whatever a process sent before it exited is still queued, so an empty queue and a dead process
            // mean the notification will never come.
            if (process != null && !process.isAlive()) {
                fail("nbdgate exited " + process.exitValue() + " before the notification: " + Files.readString(err)
                        + "\nreceived: " + notifications);
            }
            Thread.sleep(100);
        }
        fail("no matching notification within 180 s; received: " + notifications + "\n" + Files.readString(err));
        return null;
    }

    private static int closedPort() throws Exception {
        try (ServerSocket s = new ServerSocket(0)) {
            return s.getLocalPort();
        }
    }

    @Test
    void readyComesOnlyOnceTheDeviceIsLiveThenStatusWatchdogAndStopping() throws Exception {
        try (ExternalNbdServer server = ExternalNbdServer.nbdkit(Files.createDirectories(dir.resolve("s")), List.of(),
                "memory", "32M")) {
            Path cfg = Files.writeString(dir.resolve("nbdgate.yaml"), """
                    status: {listen: "off"}
                    devices:
                      - {name: live-disk, uri: "nbd://127.0.0.1:%d/a", queues: 1}
                      - {name: gone-disk, uri: "nbd://127.0.0.1:%d/b", timeouts: {connect: 2s}}
                    """.formatted(server.port(), closedPort()));
            String socket = dir.resolve("notify").toString();
            notifySocket = LinuxCalls.unixDatagramSocket();
            LinuxCalls.bindUnix(notifySocket, socket);
            Path out = dir.resolve("out");
            Path err = dir.resolve("err");
            process = nbdgate(out, err, Map.of("NOTIFY_SOCKET", socket, "WATCHDOG_USEC", "2000000"),
                    "daemon", "--config", cfg.toString());

            String ready = awaitNotification(m -> m.contains("READY=1"), err);
            // At the moment READY=1 arrives the device must already be there, by number and by name.
            Path link = LINKS.resolve("live-disk");
            assertTrue(Files.isSymbolicLink(link), "no " + link + " at READY=1");
            String dev = Files.readSymbolicLink(link).toString();
            assertTrue(dev.matches("/dev/ublkb\\d+"), dev);
            assertEquals("1", exec("sh", "-c", "test -b " + dev + " && echo 1").output().strip(), dev + " at READY");
            assertTrue(ready.contains("STATUS=1 of 2 devices connected: live-disk " + dev + " connected, gone-disk not attached"),
                    ready);
            assertTrue(notifications.stream().anyMatch(m -> m.equals("STATUS=attaching live-disk (1 of 2)")),
                    notifications.toString());
            assertEquals(List.of("live-disk " + dev), awaitLines(out, 1, process, err));

            // WATCHDOG_USEC=2 s: pings every second while the event loops answer.
            awaitNotification(m -> m.equals("WATCHDOG=1"), err);
            awaitNotification(m -> m.equals("WATCHDOG=1"), err);

            assertEquals(1, notifications.stream().filter(m -> m.contains("READY=1")).count(), notifications.toString());
            process.destroy(); // SIGTERM, as systemd stops it
            awaitNotification(m -> m.startsWith("STOPPING=1"), err);
            assertTrue(process.waitFor(60, TimeUnit.SECONDS), "daemon must exit on SIGTERM");
            assertEquals(143, process.exitValue(), "the exit status SuccessExitStatus= names");
            assertFalse(Files.exists(link, LinkOption.NOFOLLOW_LINKS), link + " must go with the device");
            assertFalse(Files.exists(Path.of(dev)), dev);
        }
    }

    @Test
    void theByNamePathFollowsDetachAndAttach() throws Exception {
        try (ExternalNbdServer server = ExternalNbdServer.nbdkit(dir, List.of(), "memory", "64M")) {
            Path link = LINKS.resolve("named");
            String uri = "nbd://127.0.0.1:" + server.port() + "/disk";
            String first = attachNamed(uri, "out1");
            assertEquals(Path.of(first), Files.readSymbolicLink(link));
            // Data written through the name is on the device (and so on the server).
            run("dd", "if=/dev/urandom", "of=" + dir.resolve("data"), "bs=1M", "count=4", "status=none");
            run("dd", "if=" + dir.resolve("data"), "of=" + link, "bs=1M", "oflag=direct", "status=none");
            run("cmp", "-n", "4194304", dir.resolve("data").toString(), first);
            assertTrue(Files.readString(dir.resolve("run/names").resolve(Path.of(first).getFileName()))
                    .contains("NBDGATE_NAME=named"), "the name file the udev rule reads");

            GuestProcesses.Result detach = exec("env", "NBDGATE_RUN_DIR=" + dir.resolve("run"),
                    GuestProcesses.ROOT.resolve("bin/nbdgate").toString(), "detach", "named");
            assertEquals(0, detach.exit(), detach.output());
            assertTrue(process.waitFor(30, TimeUnit.SECONDS));
            assertFalse(Files.exists(link, LinkOption.NOFOLLOW_LINKS), "detach must remove " + link);

            String second = attachNamed(uri, "out2");
            assertEquals(Path.of(second), Files.readSymbolicLink(link), "the name follows the new device");
            run("cmp", "-n", "4194304", dir.resolve("data").toString(), link.toString());
            process.destroy();
            assertTrue(process.waitFor(30, TimeUnit.SECONDS));
            assertFalse(Files.exists(link, LinkOption.NOFOLLOW_LINKS), "SIGTERM must remove " + link);
        }
    }

    /**
     * {@code nbdgate resize}: the export grows on the server, the device follows, ext4 grows online; no shrink.
     * With --auto-resize a reconnect that finds the export larger grows the device by itself.
     */
    @Test
    void resizeGrowsTheDeviceUnderAMountedFileSystemAndRefusesToShrinkIt() throws Exception {
        Path image = dir.resolve("grow.img");
        run("truncate", "-s", "64M", image.toString());
        try (ExternalNbdServer server = ExternalNbdServer.nbdkit(Files.createDirectories(dir.resolve("s")), List.of(),
                "file", image.toString())) {
            String dev = attachNamed("nbd://127.0.0.1:" + server.port() + "/", "out", "--auto-resize");
            Path mnt = Files.createDirectories(dir.resolve("mnt"));
            // 4 KiB blocks: a 64 MiB ext4 otherwise gets 1 KiB ones, and the kernel refused (ENOSPC) to grow that
            // one online.
            run("mkfs.ext4", "-q", "-F", "-b", "4096", dev);
            run("mount", dev, mnt.toString());
            try {
                run("dd", "if=/dev/urandom", "of=" + mnt.resolve("data"), "bs=1M", "count=8", "status=none");
                run("sync");
                String sum = run("sha256sum", mnt.resolve("data").toString());
                long fsBefore = Long.parseLong(run("df", "-B1", "--output=size", mnt.toString()).lines().skip(1)
                        .findFirst().orElseThrow().strip());

                run("truncate", "-s", "128M", image.toString());
                GuestProcesses.Result grown = nbdgateClient("resize", "named");
                assertEquals(0, grown.exit(), grown.output());
                assertTrue(grown.output().contains("named: " + dev + " resized from 67108864 to 134217728 bytes"),
                        grown.output());
                assertEquals(134217728L, deviceBytes(dev));
                run("resize2fs", dev); // online: the file system is mounted
                long fsAfter = Long.parseLong(run("df", "-B1", "--output=size", mnt.toString()).lines().skip(1)
                        .findFirst().orElseThrow().strip());
                assertTrue(fsAfter > fsBefore + 50 * (1L << 20), "ext4 grew from " + fsBefore + " to " + fsAfter);
                // The new end is really there: write past the old size, read it back from the server's file.
                run("dd", "if=/dev/urandom", "of=" + mnt.resolve("more"), "bs=1M", "count=70", "status=none");
                run("sync");

                GuestProcesses.Result again = nbdgateClient("resize", dev);
                assertEquals(0, again.exit(), again.output());
                assertTrue(again.output().contains("unchanged at 134217728 bytes"), again.output());

                run("truncate", "-s", "96M", image.toString());
                GuestProcesses.Result shrink = nbdgateClient("resize", "named");
                assertEquals(1, shrink.exit(), shrink.output());
                assertTrue(shrink.output().contains("the export shrank from 134217728 to 100663296 bytes"),
                        shrink.output());
                assertEquals(134217728L, deviceBytes(dev), "a refused shrink changes nothing");
                run("truncate", "-s", "128M", image.toString());

                // --auto-resize: a reconnect that finds the export larger grows the device by itself.
                run("truncate", "-s", "160M", image.toString());
                List<Integer> ports = TcpConnections.clientPorts("127.0.0.1", server.port());
                assertEquals(1, ports.size(), "the device's one connection: " + ports);
                TcpConnections.reset("127.0.0.1", server.port(), ports.getFirst());
                for (int i = 0; i < 600 && deviceBytes(dev) != 167772160L; i++) {
                    Thread.sleep(100);
                }
                assertEquals(167772160L, deviceBytes(dev), "auto-resize after the reconnect");

                run("sh", "-c", "echo 3 > /proc/sys/vm/drop_caches");
                assertEquals(sum, run("sha256sum", mnt.resolve("data").toString()));
            } finally {
                exec("umount", mnt.toString());
            }
            run("e2fsck", "-f", "-n", dev);
            assertTrue(process.isAlive(), "the attach process must still serve the device");
        }
    }

    private GuestProcesses.Result nbdgateClient(String... args) throws Exception {
        List<String> cmd = new ArrayList<>(List.of("env", "NBDGATE_RUN_DIR=" + dir.resolve("run"),
                GuestProcesses.ROOT.resolve("bin/nbdgate").toString()));
        cmd.addAll(List.of(args));
        return exec(cmd.toArray(String[]::new));
    }

    private static long deviceBytes(String dev) throws Exception {
        return Long.parseLong(Files.readString(Path.of("/sys/block", Path.of(dev).getFileName().toString(), "size"))
                .strip()) * 512;
    }

    private String attachNamed(String uri, String outName, String... more) throws Exception {
        Path out = dir.resolve(outName);
        Path err = dir.resolve(outName + ".err");
        List<String> args = new ArrayList<>(List.of("attach", uri, "--name", "named", "--queues", "1"));
        args.addAll(List.of(more));
        process = nbdgate(out, err, args.toArray(String[]::new));
        String dev = awaitLines(out, 1, process, err).getFirst();
        assertTrue(dev.matches("/dev/ublkb\\d+"), dev);
        return dev;
    }
}
