package io.nbdgate.ublk;

import static org.junit.jupiter.api.Assertions.*;

import io.nbdgate.ublk.target.FileTarget;
import io.nbdgate.ublk.target.MemoryTarget;
import io.nbdgate.uring.Errno;
import io.nbdgate.uring.UringException;
import io.netty.channel.MultiThreadIoEventLoopGroup;
import java.io.IOException;
import java.io.RandomAccessFile;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

/**
 * QUIESCE_DEV, the daemon-upgrade hand-over, in one process: while fio writes and then verifies (crc32c)
 * the whole device, it is quiesced and taken over by fresh queues, twice. While quiesced the kernel says
 * QUIESCED and holds the I/O: nothing completes, nothing reaches the server, requests wait, fio waits.
 * After each take-over the device is LIVE and serves again, and fio ends with every block verified.
 * A file target serves asynchronously in every buffer mode, so requests can be in service when QUIESCE_DEV
 * comes: their commits re-arm commands that must be aborted too before the queues stop.
 */
@Tag("ublk")
class QuiesceGuestTest {
    static final long SIZE = 32L << 20;
    static final long HOLD_MS = 3000;
    static MultiThreadIoEventLoopGroup group;

    @BeforeAll
    static void loops() {
        group = Guest.loops(2);
    }

    @AfterAll
    static void stopLoops() throws InterruptedException {
        group.shutdownGracefully().sync();
    }

    @ParameterizedTest(name = "{0}")
    @EnumSource(BufferMode.class)
    void quiescedDeviceHoldsIoUntilFreshQueuesTakeItOver(BufferMode mode) throws Exception {
        Path log = Path.of("/tmp/fio-quiesce-" + mode.label() + ".log");
        Path backing = Path.of("/tmp/quiesce-" + mode.label() + ".img");
        try (RandomAccessFile f = new RandomAccessFile(backing.toFile(), "rw")) {
            f.setLength(SIZE);
        }
        try (ControlDevice ctl = ControlDevice.open();
             FileTarget file = FileTarget.open(backing.toString());
             UblkDevice dev = UblkDevice.create(ctl, DeviceSpec.of(2, 32).withMode(mode).withRecovery(true).withBatchIo(false),
                     DeviceParams.disk(SIZE, 512 * 1024))) {
            assertTrue(dev.info().has(UblkAbi.F_QUIESCE), "the kernel did not accept UBLK_F_QUIESCE");
            dev.start(Guest.list(group), q -> file);
            Process fio = new ProcessBuilder("fio", "--name=quiesce", "--filename=" + dev.blockDevice(),
                    "--allow_file_create=0", "--rw=randwrite", "--bs=4k", "--size=" + SIZE, "--iodepth=32",
                    "--ioengine=io_uring", "--direct=1", "--verify=crc32c", "--do_verify=1", "--verify_fatal=1",
                    "--randrepeat=0").redirectErrorStream(true).redirectOutput(log.toFile()).start();
            for (int round = 1; round <= 2; round++) {
                awaitServed(dev, dev.requestsServed() + 500, fio, log);
                dev.quiesce(10_000);
                assertEquals("QUIESCED", dev.info().stateName(), "round " + round);
                long served = dev.requestsServed();
                long[] stat = diskStat(dev);
                Thread.sleep(HOLD_MS);
                long[] held = diskStat(dev);
                System.out.printf("round %d: quiesced after %d requests; in flight %d -> %d%n", round, served,
                        stat[8], held[8]);
                assertTrue(fio.isAlive(), "fio ended while the device was quiesced:\n" + Files.readString(log));
                assertEquals(served, dev.requestsServed(), "a request reached the server while quiesced");
                assertEquals(stat[0], held[0], "reads completed while quiesced");
                assertEquals(stat[4], held[4], "writes completed while quiesced");
                assertTrue(held[8] > 0, "no request was waiting while quiesced");
                dev.resume(Guest.list(group), q -> file);
                assertEquals("LIVE", dev.info().stateName(), "round " + round);
            }
            assertTrue(fio.waitFor(600, TimeUnit.SECONDS), "fio did not finish after the take-over");
            String out = Files.readString(log);
            System.out.println(out);
            assertEquals(0, fio.exitValue(), "fio failed across quiesce and take-over:\n" + out);
            assertEquals(0, dev.eventsOffLoop());
        }
        Files.delete(backing);
        assertEquals(List.of(), Guest.ublkNodes());
    }

    @Test
    void aDeviceNotCreatedRecoverableCannotBeQuiesced() throws Exception {
        long size = 8L << 20;
        try (ControlDevice ctl = ControlDevice.open();
             MemoryTarget ram = MemoryTarget.create(size);
             UblkDevice dev = UblkDevice.create(ctl, DeviceSpec.of(1, 8), DeviceParams.disk(size, 128 * 1024))) {
            dev.start(Guest.list(group), q -> ram);
            IllegalStateException refused = assertThrows(IllegalStateException.class, () -> dev.quiesce(1000));
            assertTrue(refused.getMessage().contains("recoverable"), refused.getMessage());
            UringException kernel = assertThrows(UringException.class, () -> ctl.quiesce(dev.id(), 1000));
            assertEquals(Errno.EOPNOTSUPP, kernel.errno(), kernel.getMessage());
            assertEquals("LIVE", dev.info().stateName());
            Guest.run("dd", "if=" + dev.blockDevice(), "of=/dev/null", "bs=64k", "count=4", "iflag=direct",
                    "status=none");
        }
        assertEquals(List.of(), Guest.ublkNodes());
    }

    @Test
    void closingAQuiescedDeviceFailsTheHeldIoAndRemovesIt() throws Exception {
        long size = 8L << 20;
        try (ControlDevice ctl = ControlDevice.open();
             MemoryTarget ram = MemoryTarget.create(size);
             UblkDevice dev = UblkDevice.create(ctl, DeviceSpec.of(1, 8).withRecovery(true).withBatchIo(false),
                     DeviceParams.disk(size, 128 * 1024))) {
            dev.start(Guest.list(group), q -> ram);
            dev.quiesce(1000);
            Process dd = new ProcessBuilder("dd", "if=/dev/zero", "of=" + dev.blockDevice(), "bs=4k", "count=1",
                    "oflag=direct").redirectErrorStream(true).start();
            assertFalse(dd.waitFor(HOLD_MS, TimeUnit.MILLISECONDS), "the write was not held while quiesced");
            dev.close(); // what the shutdown hook does
            assertTrue(dd.waitFor(60, TimeUnit.SECONDS), "the held write still hangs after close");
            String out = new String(dd.getInputStream().readAllBytes());
            assertNotEquals(0, dd.exitValue(), out);
            assertTrue(out.contains("Input/output error"), out);
        }
        assertEquals(List.of(), Guest.ublkNodes());
    }

    /** Waits until the device has served {@code target} requests; fio must still be running meanwhile. */
    static void awaitServed(UblkDevice dev, long target, Process fio, Path log) throws Exception {
        for (int i = 0; i < 3000 && dev.requestsServed() < target; i++) {
            assertTrue(fio.isAlive(), "fio ended before the quiesce; the test would prove nothing:\n"
                    + Files.readString(log));
            Thread.sleep(20);
        }
        assertTrue(dev.requestsServed() >= target, "the device served " + dev.requestsServed() + " of " + target);
    }

    /** /sys/block/ublkbN/stat: [0] reads completed, [4] writes completed, [8] requests in flight. */
    static long[] diskStat(UblkDevice dev) throws IOException {
        String name = Path.of(dev.blockDevice()).getFileName().toString();
        return Arrays.stream(Files.readString(Path.of("/sys/block", name, "stat")).trim().split("\\s+"))
                .mapToLong(Long::parseLong).toArray();
    }
}
