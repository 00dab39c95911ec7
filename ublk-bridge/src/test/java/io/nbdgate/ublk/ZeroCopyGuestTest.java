package io.nbdgate.ublk;

import static org.junit.jupiter.api.Assertions.*;

import io.nbdgate.ublk.target.MemoryTarget;
import io.netty.channel.MultiThreadIoEventLoopGroup;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

/**
 * Zero copy is real: with AUTO_BUF_REG Java copies no data byte while fio moves well over 100 MB
 * (counted by the kernel in /sys/block/ublkbN/stat); in copy mode the same counter does move.
 */
@Tag("ublk")
class ZeroCopyGuestTest {
    static final long SIZE = 64L << 20;

    @ParameterizedTest
    @EnumSource(value = BufferMode.class, names = {"ZERO_COPY", "COPY"})
    void javaCopiesNothingInZeroCopyMode(BufferMode mode) throws Exception {
        MultiThreadIoEventLoopGroup group = Guest.loops(1);
        try (ControlDevice ctl = ControlDevice.open();
             MemoryTarget ram = MemoryTarget.create(SIZE);
             UblkDevice dev = UblkDevice.create(ctl, DeviceSpec.of(1, 32).withMode(mode),
                     DeviceParams.disk(SIZE, 512 * 1024))) {
            dev.start(Guest.list(group), q -> ram);
            long before = JavaCopies.bytes();
            Guest.fio(dev.blockDevice(), "write", "1M", SIZE, "--loops=2");
            long copied = JavaCopies.bytes() - before;
            String[] stat = Files.readString(Path.of("/sys/block/ublkb" + dev.id() + "/stat")).trim().split("\\s+");
            long moved = (Long.parseLong(stat[2]) + Long.parseLong(stat[6])) * 512;
            System.out.printf("mode %s: kernel moved %d bytes, Java copied %d%n", mode.label(), moved, copied);
            assertTrue(moved >= 100_000_000L, "fio moved only " + moved + " bytes");
            if (mode == BufferMode.ZERO_COPY) {
                assertEquals(0, copied, "Java copied data in zero-copy mode");
            } else {
                assertTrue(copied >= moved / 2, "copy mode should copy in Java; counted " + copied);
            }
        } finally {
            group.shutdownGracefully().sync();
        }
    }
}
