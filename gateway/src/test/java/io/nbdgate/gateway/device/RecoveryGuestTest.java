package io.nbdgate.gateway.device;

import static io.nbdgate.gateway.device.GuestProcesses.awaitLines;
import static io.nbdgate.gateway.device.GuestProcesses.awaitText;
import static io.nbdgate.gateway.device.GuestProcesses.exec;
import static io.nbdgate.gateway.device.GuestProcesses.nbdgate;
import static io.nbdgate.gateway.device.GuestProcesses.run;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.nbdgate.gateway.config.ZeroCopy;
import io.nbdgate.gateway.control.ControlClient;
import io.nbdgate.gateway.link.NbdConnectionException;
import io.nbdgate.gateway.testsupport.ExternalNbdServer;
import io.nbdgate.ublk.ControlDevice;
import io.nbdgate.ublk.DeviceInfo;
import io.nbdgate.ublk.DeviceNodes;
import io.vertx.core.Vertx;
import io.vertx.core.VertxOptions;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The process serving a device dies (SIGKILL: as an OOM kill or a JVM crash would) while fio or a filesystem
 * writes to it. The kernel holds the I/O; the next nbdgate with the same name takes the device over, same
 * /dev/ublkbN, and nothing fails: fio verifies every block, ext4 stays mounted and clean.
 */
@Tag("ublk")
class RecoveryGuestTest {
    static final long MIB = 1L << 20;

    @TempDir
    Path dir;

    private final List<Process> processes = new ArrayList<>();
    private final List<Path> mounts = new ArrayList<>();
    private ExternalNbdServer server;
    private int started;

    @AfterEach
    void cleanUp() throws Exception {
        for (Path m : mounts) {
            exec("umount", "-l", m.toString());
        }
        for (Process p : processes) {
            if (p.isAlive()) {
                p.destroy(); // SIGTERM: a clean detach
                p.waitFor(90, TimeUnit.SECONDS);
            }
        }
        for (DeviceRecord r : Orphans.list(records())) {
            Orphans.remove(records(), r, DetachMode.FORCE);
        }
        if (server != null) {
            server.close();
        }
        for (int i = 0; i < 300 && !DeviceNodes.presentDevices().isEmpty(); i++) {
            Thread.sleep(20);
        }
        assertTrue(DeviceNodes.presentDevices().isEmpty(), "ublk devices left behind: " + DeviceNodes.presentDevices());
    }

    @Test
    void daemonKilledThreeTimesDuringFioOnTwoQueuesIsTakenOverEachTime() throws Exception {
        // A file, not memory: the second crash restarts the server too, and the data must outlive it.
        Path image = dir.resolve("disk.img");
        try (var f = new java.io.RandomAccessFile(image.toFile(), "rw")) {
            f.setLength(64 * MIB);
        }
        server = ExternalNbdServer.nbdkit(dir, List.of(), "file", "file=" + image);
        Path cfg = dir.resolve("nbdgate.yaml");
        // A connect timeout for TCG: the take-over keeps trying while the test starts the server again.
        Files.writeString(cfg, """
                status: {listen: "off"}
                devices:
                  - {name: disk, uri: "nbd://127.0.0.1:%d/", queues: 2, timeouts: {connect: 120s}}
                """.formatted(server.port()));
        String dev = startAndAwait("daemon", "--config", cfg.toString());
        KernelLog log = KernelLog.mark("daemon killed three times");
        try (FioJob fio = FioJob.start(dir, dev, "--rw=randwrite", "--bssplit=4k/60:64k/30:256k/10",
                "--numjobs=2", "--offset_increment=24M", "--size=24M", "--do_verify=1")) {
            for (int i = 1; i <= 3; i++) {
                fio.awaitWritten(i * 6 * MIB, Duration.ofMinutes(3));
                long killed = System.nanoTime();
                killServing();
                assertTrue(fio.isAlive(), () -> "fio must wait for the next daemon, not fail:\n" + fio.output());
                assertEquals(List.of("disk"), Orphans.list(records()).stream().map(DeviceRecord::name).toList());
                Process next;
                if (i == 2) {
                    // The server restarts as the daemon does: the take-over is refused, waits, and connects.
                    server.kill();
                    next = start("daemon", "--config", cfg.toString());
                    awaitText(dir.resolve("err" + started), "trying again", next);
                    server.startAgain();
                } else {
                    next = start("daemon", "--config", cfg.toString());
                }
                assertEquals(dev, awaitDevice(next), "the same device, taken over");
                System.out.printf("crash %d: I/O held %d ms (the next daemon's start and take-over%s)%n", i,
                        TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - killed),
                        i == 2 ? ", the server restarted meanwhile" : "");
            }
            fio.assertClean(Duration.ofMinutes(5));
        }
        log.assertNoUblkIoErrors();
        assertTrue(Files.readString(dir.resolve("err" + started)).contains("took over " + dev),
                () -> "the last daemon took the device over: " + errOf(started));
    }

    @Test
    void handoverLeavesTheDevicesToTheNextDaemonDuringFio() throws Exception {
        server = ExternalNbdServer.nbdkit(dir, List.of(), "memory", "64M");
        Path cfg = dir.resolve("nbdgate.yaml");
        Files.writeString(cfg, """
                status: {listen: "off"}
                devices:
                  - {name: up, uri: "nbd://127.0.0.1:%d/", queues: 2}
                """.formatted(server.port()));
        String dev = startAndAwait("daemon", "--config", cfg.toString());
        KernelLog log = KernelLog.mark("handover");
        try (FioJob fio = FioJob.start(dir, dev, "--rw=randwrite", "--bs=4k", "--size=16M", "--do_verify=1")) {
            fio.awaitWritten(2 * MIB, Duration.ofMinutes(3));
            long start = System.nanoTime();
            List<String> lines = withRunDir(ControlClient::handover);
            assertEquals(List.of("up " + dev + " left to the next daemon"), lines);
            Process old = processes.getLast();
            assertTrue(old.waitFor(60, TimeUnit.SECONDS), "the daemon did not exit after the hand-over");
            assertEquals(75, old.exitValue(), () -> errOf(started));
            assertTrue(Files.exists(Path.of(dev)), "the device stays after the hand-over");
            assertEquals(dev, startAndAwait("daemon", "--config", cfg.toString()), "the same device, taken over");
            System.out.printf("hand-over: I/O paused %d ms (the next daemon's start and take-over)%n",
                    TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - start));
            fio.assertClean(Duration.ofMinutes(5));
        }
        log.assertNoUblkIoErrors();
    }

    @Test
    void attachKilledUnderMountedExt4WithAWriterIsTakenOverAndTheFilesystemStaysClean() throws Exception {
        server = ExternalNbdServer.nbdkit(dir, List.of(), "memory", "64M");
        String uri = "nbd://127.0.0.1:" + server.port() + "/";
        String dev = startAndAwait("attach", uri, "--name", "fs");
        Path mnt = dir.resolve("mnt");
        run("mkfs.ext4", "-q", "-F", dev);
        Files.createDirectories(mnt);
        run("mount", dev, mnt.toString());
        mounts.add(mnt);
        Path source = dir.resolve("source");
        run("sh", "-c", "mkdir " + source + " && for i in 1 2 3 4 5 6; do head -c $((i * 1048576 + 4321)) /dev/urandom"
                + " > " + source + "/f$i; done");
        KernelLog log = KernelLog.mark("attach killed under ext4");
        Process writer = new ProcessBuilder("sh", "-c", "for i in 1 2 3 4 5 6; do cp " + source + "/f$i " + mnt
                + "/; sync; done").redirectErrorStream(true).start();
        int id = Integer.parseInt(dev.substring("/dev/ublkb".length()));
        FioJob.awaitWritten(id, 4 * MIB, "the writer", writer, () -> "", Duration.ofMinutes(3));
        killServing();
        assertEquals(List.of("fs"), Orphans.list(records()).stream().map(DeviceRecord::name).toList());
        assertEquals(dev, startAndAwait("attach", uri, "--name", "fs"), "the same device, taken over");
        assertTrue(writer.waitFor(5, TimeUnit.MINUTES), "the writer did not finish after the take-over");
        assertEquals(0, writer.exitValue(), new String(writer.getInputStream().readAllBytes()));
        String want = run("sh", "-c", "cd " + source + " && sha256sum f*");
        run("sh", "-c", "echo 3 > /proc/sys/vm/drop_caches");
        assertEquals(want, run("sh", "-c", "cd " + mnt + " && sha256sum f*"), "files differ after the take-over");
        run("umount", mnt.toString());
        mounts.remove(mnt);
        run("e2fsck", "-f", "-n", dev);
        log.assertNoUblkIoErrors();
    }

    @Test
    void aLiveOwnerIsNeverTakenOverAndAnOrphanDetachesWithoutAProcess() throws Exception {
        server = ExternalNbdServer.nbdkit(dir, List.of(), "memory", "16M");
        String uri = "nbd://127.0.0.1:" + server.port() + "/";
        String dev = startAndAwait("attach", uri, "--name", "one");
        Vertx vertx = QuietUringTransport.vertx(new VertxOptions());
        try {
            DeviceOptions o = new DeviceOptions("one", server.socketAddress(), "", 1, 32, ZeroCopy.AUTO, false, -1,
                    Duration.ofSeconds(30), Duration.ofSeconds(30), null);
            NbdConnectionException refused = withRunDir(() -> assertThrows(NbdConnectionException.class,
                    () -> NbdDevice.attach(o, EventLoops.of(vertx))));
            assertTrue(refused.getMessage().contains("is served by pid " + processes.getLast().pid()), refused.getMessage());
        } finally {
            vertx.close().toCompletionStage().toCompletableFuture().get(60, TimeUnit.SECONDS);
        }
        run("dd", "if=" + dev, "of=/dev/null", "bs=64k", "count=16", "iflag=direct", "status=none");
        assertGuardedAgainstMemoryPressure(processes.getLast().pid());

        killServing();
        DeviceRecord orphan = Orphans.find(records(), dev).orElseThrow();
        assertEquals("one", orphan.name());
        assertNull(Orphans.remove(records(), orphan, DetachMode.REFUSE), "an unused orphan goes at once");
        assertTrue(Orphans.list(records()).isEmpty());
        assertFalse(records().read("one").isPresent(), "its record goes with it");
    }

    @Test
    void anUnclaimedOrphanIsDeletedAfterTheOrphanTimeoutAndAForeignDeviceIsNeverTouched() throws Exception {
        server = ExternalNbdServer.nbdkit(dir, List.of(), "memory", "16M");
        String uri = "nbd://127.0.0.1:" + server.port() + "/";
        String stray = startAndAwait("attach", uri, "--name", "stray");
        killServing();
        assertEquals(List.of("stray"), Orphans.list(records()).stream().map(DeviceRecord::name).toList());
        try (ControlDevice control = ControlDevice.open()) {
            // Another program's device: added, never started, no record of ours.
            DeviceInfo foreign = control.addDevice(-1, 1, 8, 128 << 10, 0);
            try {
                Path cfg = dir.resolve("nbdgate.yaml");
                Files.writeString(cfg, """
                        status: {listen: "off"}
                        orphan-timeout: 5s
                        devices:
                          - {name: kept, uri: "%s", queues: 1}
                        """.formatted(uri));
                startAndAwait("daemon", "--config", cfg.toString());
                for (int i = 0; i < 600 && Files.exists(Path.of(stray)); i++) {
                    Thread.sleep(100);
                }
                assertFalse(Files.exists(Path.of(stray)), () -> "the orphan outlived its timeout: " + errOf(started));
                assertTrue(errOf(started).contains("deleted the orphan " + stray), () -> errOf(started));
                assertTrue(Orphans.list(records()).isEmpty());
                assertEquals(foreign.devId(), control.deviceInfo(foreign.devId()).devId(), "the foreign device stays");
            } finally {
                control.deleteDevice(foreign.devId());
            }
        }
    }

    /**
     * The serving process as {@link MemoryGuard} leaves it: never the OOM killer's choice, its memory locked, and
     * its event-loop threads IO flushers (PF_MEMALLOC_NOIO | PF_LOCAL_THROTTLE in /proc/PID/task/TID/stat).
     */
    private static void assertGuardedAgainstMemoryPressure(long pid) throws Exception {
        Path proc = Path.of("/proc", Long.toString(pid));
        assertEquals("-1000", Files.readString(proc.resolve("oom_score_adj")).strip());
        String locked = Files.readAllLines(proc.resolve("status")).stream().filter(l -> l.startsWith("VmLck:"))
                .findFirst().orElse("VmLck: 0 kB");
        assertTrue(Long.parseLong(locked.replaceAll("\\D", "")) > 0, locked);
        long ioFlusher = 0x00080000L | 0x00100000L;
        List<String> loops = new ArrayList<>();
        List<String> flushers = new ArrayList<>();
        try (var tasks = Files.list(proc.resolve("task"))) {
            for (Path t : tasks.toList()) {
                String comm = Files.readString(t.resolve("comm")).strip();
                if (!comm.startsWith("vert.x-eventloo")) {
                    continue;
                }
                loops.add(t.getFileName().toString());
                String stat = Files.readString(t.resolve("stat"));
                long flags = Long.parseLong(stat.substring(stat.lastIndexOf(')') + 2).split(" ")[6]);
                if ((flags & ioFlusher) == ioFlusher) {
                    flushers.add(t.getFileName().toString());
                }
            }
        }
        assertTrue(!loops.isEmpty() && flushers.equals(loops), "event-loop threads " + loops + ", IO flushers " + flushers);
    }

    interface Call<T> {
        T call() throws Exception;
    }

    /** Runs {@code c} in this JVM as a process using the test's run directory would (control sockets, records). */
    private <T> T withRunDir(Call<T> c) throws Exception {
        String previous = System.getProperty("nbdgate.runDir");
        System.setProperty("nbdgate.runDir", dir.resolve("run").toString());
        try {
            return c.call();
        } finally {
            if (previous == null) {
                System.clearProperty("nbdgate.runDir");
            } else {
                System.setProperty("nbdgate.runDir", previous);
            }
        }
    }

    private DeviceRecords records() {
        return new DeviceRecords(dir.resolve("run").resolve("devices"));
    }

    /** Starts bin/nbdgate with {@code args} (run dir under the test's directory) and returns the device it prints. */
    private String startAndAwait(String... args) throws Exception {
        return awaitDevice(start(args));
    }

    /** Starts bin/nbdgate with {@code args}: output to out{@link #started}, err{@link #started}. */
    private Process start(String... args) throws Exception {
        started++;
        // Debug logging: a failure's message carries the whole log of the process.
        Process p = nbdgate(dir.resolve("out" + started), dir.resolve("err" + started),
                java.util.Map.of("NBDGATE_LOG_LEVEL", "debug"), args);
        processes.add(p);
        return p;
    }

    /** The /dev/ublkbN that the last started process prints. */
    private String awaitDevice(Process p) throws Exception {
        String line;
        try {
            line = awaitLines(dir.resolve("out" + started), 1, p, dir.resolve("err" + started)).getFirst();
        } catch (AssertionError e) {
            // Whether the server still runs tells a client fault from a server fault.
            throw new AssertionError(e.getMessage() + "\n" + (server == null ? "no server" : server + " is "
                    + (server.isAlive() ? "running" : "gone") + "; its output:\n" + server.output()), e);
        }
        return line.substring(line.indexOf("/dev/ublkb")).split("\\s")[0];
    }

    /** SIGKILL the process serving the device: no hook runs, the kernel keeps the device and holds its I/O. */
    private void killServing() throws Exception {
        Process p = processes.getLast();
        p.destroyForcibly();
        assertTrue(p.waitFor(30, TimeUnit.SECONDS), "nbdgate outlived SIGKILL");
    }

    private String errOf(int n) {
        try {
            return Files.readString(dir.resolve("err" + n));
        } catch (Exception e) {
            return e.toString();
        }
    }
}
