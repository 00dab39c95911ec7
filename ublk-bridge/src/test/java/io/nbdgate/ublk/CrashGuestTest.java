package io.nbdgate.ublk;

import static org.junit.jupiter.api.Assertions.*;

import io.nbdgate.ublk.target.FileTarget;
import io.netty.channel.MultiThreadIoEventLoopGroup;
import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.io.RandomAccessFile;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

/** The server JVM dies (SIGKILL) or is told to stop (SIGTERM): nothing is left behind, or the device recovers. */
@Tag("ublk")
class CrashGuestTest {
    static final long SIZE = 32L << 20;
    static final Path FIO_LOG = Path.of("/tmp/fio-crash.log");

    record Server(Process process, int devId) {
    }

    static Server startServer(Path backing, boolean recoverable) throws Exception {
        try (RandomAccessFile f = new RandomAccessFile(backing.toFile(), "rw")) {
            f.setLength(SIZE);
        }
        String java = ProcessHandle.current().info().command().orElseThrow();
        Process p = new ProcessBuilder(java, "--enable-native-access=ALL-UNNAMED", "-cp",
                System.getProperty("java.class.path"), ServeMain.class.getName(), backing.toString(),
                Long.toString(SIZE), Boolean.toString(recoverable)).redirectErrorStream(true).start();
        BufferedReader out = new BufferedReader(new InputStreamReader(p.getInputStream()));
        String line;
        while ((line = out.readLine()) != null) {
            System.out.println("[server] " + line);
            if (line.startsWith("READY ")) {
                int id = Integer.parseInt(line.substring(6).trim());
                Thread.ofVirtual().start(() -> {
                    try {
                        out.lines().forEach(l -> System.out.println("[server] " + l));
                    } catch (java.io.UncheckedIOException killed) {
                        // the server's pipe closes when we kill it
                    }
                });
                return new Server(p, id);
            }
        }
        fail("server exited before READY: " + p.waitFor());
        return null;
    }

    static Process fioInBackground(String dev, String... extra) throws Exception {
        List<String> cmd = new java.util.ArrayList<>(List.of("fio", "--name=crash", "--filename=" + dev,
                "--allow_file_create=0", "--rw=randwrite", "--bs=4k", "--size=" + SIZE, "--iodepth=32",
                "--ioengine=io_uring", "--direct=1"));
        cmd.addAll(List.of(extra));
        return new ProcessBuilder(cmd).redirectErrorStream(true).redirectOutput(FIO_LOG.toFile())
                .start();
    }

    /**
     * Waits until fio's writes reach the device (its write count in /sys/block/ublkbN/stat). fio needs
     * seconds under TCG before its first write; a kill before that tests nothing, and fio would then meet
     * a path without a device and report "Laying out IO file".
     */
    static void awaitWrites(int devId, Process fio) throws Exception {
        Path stat = Path.of("/sys/block/ublkb" + devId + "/stat");
        for (int i = 0; i < 1200; i++) {
            long writes = Long.parseLong(Files.readString(stat).trim().split("\\s+")[4]);
            if (writes > 0) {
                return;
            }
            if (!fio.isAlive()) {
                fail("fio ended before it wrote: " + Files.readString(FIO_LOG));
            }
            Thread.sleep(100);
        }
        fail("fio wrote nothing to /dev/ublkb" + devId + " in 120 s");
    }

    @Test
    void sigkillDuringFioThenTheNextRunRemovesTheOrphan() throws Exception {
        Server s = startServer(Path.of("/tmp/crash-kill.img"), false);
        Guest.assertNodeStays(s.devId(), 1000);
        Process fio = fioInBackground(ControlDevice.blockDevice(s.devId()), "--time_based", "--runtime=60");
        awaitWrites(s.devId(), fio);
        s.process().destroyForcibly(); // SIGKILL
        assertTrue(s.process().waitFor(30, TimeUnit.SECONDS));
        assertTrue(fio.waitFor(120, TimeUnit.SECONDS), "fio hangs on the dead device");
        String log = Files.readString(FIO_LOG);
        System.out.println(log);
        assertFalse(log.contains("Laying out"), "fio did not find the block device");
        assertNotEquals(0, fio.exitValue(), "fio saw no error although its device died under it");
        try (ControlDevice ctl = ControlDevice.open()) {
            assertEquals(List.of(s.devId()), DeadDevices.remove(ctl));
        }
        assertEquals(List.of(), Guest.ublkNodes());
    }

    @Test
    void sigtermStopsAndDeletesThroughTheShutdownHook() throws Exception {
        Server s = startServer(Path.of("/tmp/crash-term.img"), false);
        assertTrue(Files.exists(Path.of(ControlDevice.blockDevice(s.devId()))));
        s.process().destroy(); // SIGTERM
        assertTrue(s.process().waitFor(30, TimeUnit.SECONDS));
        assertEquals(List.of(), Guest.ublkNodes());
    }

    @Test
    void recoverableDeviceIsTakenOverAfterSigkillAndFioFinishesVerified() throws Exception {
        Path backing = Path.of("/tmp/crash-recover.img");
        Server s = startServer(backing, true);
        String bdev = ControlDevice.blockDevice(s.devId());
        Process fio = fioInBackground(bdev, "--verify=crc32c", "--do_verify=1", "--verify_fatal=1");
        awaitWrites(s.devId(), fio);
        s.process().destroyForcibly();
        assertTrue(s.process().waitFor(30, TimeUnit.SECONDS));
        MultiThreadIoEventLoopGroup group = Guest.loops(1);
        try (ControlDevice ctl = ControlDevice.open(); FileTarget target = FileTarget.open(backing.toString())) {
            assertEquals(List.of(), DeadDevices.remove(ctl), "a recoverable device is not an orphan");
            // The kernel moves the device to QUIESCED once it notices the server is gone.
            for (int i = 0; i < 100 && ctl.deviceInfo(s.devId()).state() == UblkAbi.S_DEV_LIVE; i++) {
                Thread.sleep(100);
            }
            try (UblkDevice dev = UblkDevice.recover(ctl, s.devId(), Guest.list(group), q -> target)) {
                assertEquals("LIVE", dev.info().stateName());
                assertTrue(fio.waitFor(300, TimeUnit.SECONDS), "fio did not finish after recovery");
                System.out.println(Files.readString(FIO_LOG));
                assertEquals(0, fio.exitValue(), "fio failed across the server restart");
            }
        } finally {
            group.shutdownGracefully().sync();
        }
        assertEquals(List.of(), Guest.ublkNodes());
    }
}
