package io.nbdgate.gateway.device;

import static io.nbdgate.gateway.device.GuestProcesses.exec;
import static io.nbdgate.gateway.device.GuestProcesses.run;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.nbdgate.gateway.config.ZeroCopy;
import io.nbdgate.gateway.session.LinkStatus;
import io.nbdgate.gateway.testsupport.ExternalNbdServer;
import io.nbdgate.gateway.testsupport.ServerHost;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.EnumSource;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * A server that dies (SIGKILL) and comes back on the same port with the same backing file: I/O waits and
 * completes, fio verifies every block, and neither fio nor the kernel sees a failed request.
 */
class ReconnectGuestTest extends FaultGuestTestBase {
    private static final Duration LONG_RECONNECT = Duration.ofMinutes(5);

    /** The servers a restart is proven against; each serves a file, so what was written survives the kill. */
    enum FileServer {
        NBDKIT {
            @Override
            ExternalNbdServer start(Path dir, Path file) throws IOException {
                return ExternalNbdServer.nbdkit(ServerHost.LOOPBACK, dir, List.of(), "file", file.toString());
            }
        },
        NBD_SERVER {
            @Override
            ExternalNbdServer start(Path dir, Path file) throws IOException {
                return ExternalNbdServer.nbdServer(ServerHost.LOOPBACK, dir, file, "disk");
            }

            /**
             * nbd-server listens, then generates GnuTLS DH parameters (over a minute at times under TCG), then
             * accepts. A reconnect attempt waits in the listen backlog meanwhile; giving up on it would end the
             * test's nbd-server, which serves one client (-d), and the next start would meet the same.
             */
            @Override
            Duration connectTimeout() {
                return Duration.ofMinutes(5);
            }
        },
        NBDGATE_SERVE {
            @Override
            ExternalNbdServer start(Path dir, Path file) throws IOException {
                return ExternalNbdServer.nbdgateServe(ServerHost.LOOPBACK, dir, file, "disk");
            }
        };

        abstract ExternalNbdServer start(Path dir, Path file) throws IOException;

        Duration connectTimeout() {
            return CONNECT_TIMEOUT;
        }
    }

    /** Every server in both buffer modes: zero copy, and ublk user copy. */
    static Stream<Arguments> serversAndModes() {
        return Stream.of(FileServer.values()).flatMap(kind -> Stream.of(ZeroCopy.ON, ZeroCopy.OFF)
                .map(mode -> Arguments.of(kind, mode)));
    }

    @ParameterizedTest(name = "{0}, zero-copy {1}")
    @MethodSource("serversAndModes")
    void fiveRestartsDuringOneFioRunFailNothing(FileServer kind, ZeroCopy zeroCopy) throws Exception {
        server = kind.start(dir, backingFile("export.img", 32 * MIB));
        attach(options(server, 1, kind.connectTimeout(), Duration.ofSeconds(30), LONG_RECONNECT, zeroCopy));
        KernelLog log = KernelLog.mark("five restarts of " + kind + ", zero-copy " + zeroCopy);
        PayloadBytes before = PayloadBytes.now();
        // Mixed sizes, so requests of several segments are in flight when the server dies.
        try (FioJob fio = FioJob.start(dir, device, "--rw=randwrite", "--bssplit=4k/60:64k/30:256k/10",
                "--size=24M", "--do_verify=1");
             ServerKeeper keeper = new ServerKeeper(server)) {
            for (int i = 1; i <= 5; i++) {
                fio.awaitWritten(i * 3 * MIB, Duration.ofMinutes(3));
                keeper.restart();
            }
            try {
                fio.assertClean(Duration.ofMinutes(5));
            } catch (AssertionError e) {
                throw new AssertionError(e.getMessage() + "\n" + server + " said:\n" + server.output(), e);
            }
        }
        log.assertNoUblkIoErrors();
        assertTrue(device.reconnects() >= 5, () -> "5 restarts, " + device.reconnects() + " reconnects: " + links());
        assertPayloadMovedAs(zeroCopy, before);
    }

    /**
     * In both buffer modes: zero copy, and ublk user copy, whose links send writes from user memory and land
     * read replies there (staged from the receive buffer or received straight in). Mixed sizes with verify_backlog,
     * so verifying reads are in flight when the server dies and must come back right from the next connection.
     */
    @ParameterizedTest
    @EnumSource(value = ZeroCopy.class, names = {"ON", "OFF"})
    void serverGoneLongerThanTheIoTimeoutThenBackMeansIoWaitsAndCompletes(ZeroCopy zeroCopy) throws Exception {
        server = FileServer.NBDKIT.start(dir, backingFile("export.img", 32 * MIB));
        Duration ioTimeout = Duration.ofSeconds(3);
        attach(options(server, 1, ioTimeout, LONG_RECONNECT, zeroCopy));
        KernelLog log = KernelLog.mark("server gone, zero-copy " + zeroCopy);
        PayloadBytes before = PayloadBytes.now();
        try (FioJob fio = FioJob.start(dir, device, "--rw=randwrite", "--bssplit=4k/60:64k/30:256k/10",
                "--size=16M", "--verify_backlog=16", "--do_verify=1")) {
            fio.awaitWrittenWithReadsInFlight(2 * MIB, Duration.ofMinutes(3));
            // Frozen first, so that the kill finds requests in flight however the guest schedules fio.
            server.freeze();
            fio.awaitRequestsInFlight(Duration.ofMinutes(1));
            server.kill();
            Thread.sleep(ioTimeout.multipliedBy(3).toMillis());
            assertTrue(fio.isAlive(), () -> "fio must wait for the server, not fail:\n" + fio.output());
            assertTrue(device.linkStates().stream().anyMatch(s -> s.state() == LinkStatus.State.RECONNECTING),
                    this::links);
            server.startAgain();
            fio.assertClean(Duration.ofMinutes(5));
        }
        log.assertNoUblkIoErrors();
        assertTrue(device.linkStates().stream().allMatch(s -> s.state() == LinkStatus.State.CONNECTED), this::links);
        assertTrue(device.resentRequests() > 0, () -> "nothing was in flight when the server died: " + links());
        assertPayloadMovedAs(zeroCopy, before);
    }

    @Test
    void ext4WithAWriterStaysMountedAndCleanAcrossARestart() throws Exception {
        server = FileServer.NBDKIT.start(dir, backingFile("export.img", 64 * MIB));
        attach(options(server, 1, Duration.ofSeconds(30), LONG_RECONNECT));
        String dev = device.blockDevice();
        Path src = Files.createDirectories(dir.resolve("src"));
        Path mnt = Files.createDirectories(dir.resolve("mnt"));
        run("sh", "-c", "for i in $(seq 1 12); do head -c $((i * 65536 + 777)) /dev/urandom > " + src + "/f$i; done");
        run("mkfs.ext4", "-q", "-F", dev);
        run("mount", dev, mnt.toString());
        KernelLog log = KernelLog.mark("ext4 across a restart");
        try {
            long base = FioJob.bytesWritten(device.id());
            Path writerLog = dir.resolve("writer.log");
            // One file at a time, each synced: the restart lands between and inside synced writes.
            Process writer = new ProcessBuilder("sh", "-c", "for i in $(seq 1 12); do cp " + src + "/f$i " + mnt
                    + "/f$i && sync " + mnt + "/f$i || exit 1; done").redirectErrorStream(true)
                    .redirectOutput(writerLog.toFile()).start();
            FioJob.awaitWritten(device.id(), base + 2 * MIB, "the file writer", writer, () -> read(writerLog), Duration.ofMinutes(3));
            server.restart();
            assertTrue(writer.waitFor(5, TimeUnit.MINUTES), "the writer hangs: " + links());
            assertEquals(0, writer.exitValue(), () -> "the writer failed: " + read(writerLog));
            String mount = run("sh", "-c", "grep ' " + mnt + " ' /proc/mounts");
            assertTrue(mount.contains(" rw,") || mount.contains(" rw "), "ext4 went read-only: " + mount);
            run("umount", mnt.toString());
            run("mount", dev, mnt.toString());
            assertEquals(run("sh", "-c", "cd " + src + " && sha256sum f*"),
                    run("sh", "-c", "cd " + mnt + " && sha256sum f*"), "files differ after the restart");
        } finally {
            exec("umount", mnt.toString());
        }
        run("e2fsck", "-f", "-n", dev);
        log.assertNoUblkIoErrors();
        assertEquals(List.of(), log.linesSince().stream().filter(l -> l.contains("EXT4-fs error")).toList());
        assertTrue(device.reconnects() >= 1, this::links);
    }

    private static String read(Path p) {
        try {
            return Files.readString(p);
        } catch (IOException e) {
            return "(unreadable: " + e + ")";
        }
    }

    /**
     * Starts the server again whenever it exits between the test's own restarts, as a service manager would.
     * Each such start is reported on stderr with the server's output, so that a client behaviour that ends the
     * server shows up.
     */
    private static final class ServerKeeper implements AutoCloseable {
        private final ExternalNbdServer server;
        private final Thread watcher;
        private volatile boolean closed;

        ServerKeeper(ExternalNbdServer server) {
            this.server = server;
            this.watcher = Thread.ofPlatform().daemon().name("server-keeper").start(this::watch);
        }

        synchronized void restart() throws Exception {
            server.restart();
        }

        private void watch() {
            while (!closed) {
                try {
                    Thread.sleep(500);
                    synchronized (this) {
                        if (!closed && !server.isAlive()) {
                            System.err.println("server-keeper: " + server + " exited between restarts; starting it"
                                    + " again. It said:\n" + server.output());
                            server.startAgain();
                        }
                    }
                } catch (InterruptedException e) {
                    return;
                } catch (Exception e) {
                    System.err.println("server-keeper: " + e);
                }
            }
        }

        @Override
        public void close() throws InterruptedException {
            closed = true;
            watcher.interrupt();
            watcher.join(5000);
        }
    }
}
