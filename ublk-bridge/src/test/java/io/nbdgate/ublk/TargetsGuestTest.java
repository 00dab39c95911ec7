package io.nbdgate.ublk;

import static org.junit.jupiter.api.Assertions.*;

import io.nbdgate.ublk.target.FileTarget;
import io.nbdgate.ublk.target.MemoryTarget;
import io.netty.channel.MultiThreadIoEventLoopGroup;
import java.io.RandomAccessFile;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.util.HexFormat;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * Memory and file targets in every buffer mode, two queues on two Netty loops: fio with crc32c
 * verification over the whole device (random 4k and sequential 1M, iodepth 32), then the device's
 * bytes must equal the backing store's (RAM or file) byte for byte.
 */
@Tag("ublk")
class TargetsGuestTest {
    static final long SIZE = 64L << 20;
    static MultiThreadIoEventLoopGroup group;

    @BeforeAll
    static void loops() {
        group = Guest.loops(2);
    }

    @AfterAll
    static void stopLoops() throws InterruptedException {
        group.shutdownGracefully().sync();
    }

    static Stream<Arguments> cases() {
        return Stream.of("memory", "file").flatMap(k -> Stream.of(BufferMode.values()).map(m -> Arguments.of(k, m)));
    }

    @ParameterizedTest(name = "{0} target, {1}")
    @MethodSource("cases")
    void fioVerifiesTheWholeDeviceAndTheBackingStoreHoldsIt(String kind, BufferMode mode) throws Exception {
        Path backing = Path.of("/tmp/backing-" + mode.label() + ".img");
        Target target;
        if (kind.equals("memory")) {
            target = MemoryTarget.create(SIZE);
        } else {
            try (RandomAccessFile f = new RandomAccessFile(backing.toFile(), "rw")) {
                f.setLength(SIZE);
            }
            target = FileTarget.open(backing.toString());
        }
        String deviceDigest;
        try (ControlDevice ctl = ControlDevice.open();
             UblkDevice dev = UblkDevice.create(ctl, DeviceSpec.of(2, 32).withMode(mode),
                     DeviceParams.disk(SIZE, 512 * 1024))) {
            dev.start(Guest.list(group), q -> target);
            assertEquals(mode, dev.mode());
            Guest.fio(dev.blockDevice(), "randwrite", "4k", SIZE);
            Guest.fio(dev.blockDevice(), "write", "1M", SIZE);
            deviceDigest = Guest.sha256(Path.of(dev.blockDevice()), SIZE);
            String backingDigest = kind.equals("memory")
                    ? hex(((MemoryTarget) target).contents().toArray(java.lang.foreign.ValueLayout.JAVA_BYTE))
                    : null;
            if (backingDigest != null) {
                assertEquals(deviceDigest, backingDigest, "RAM differs from what the device shows");
            }
            assertEquals(0, dev.eventsOffLoop());
        }
        if (kind.equals("file")) {
            assertEquals(deviceDigest, Guest.sha256(backing, SIZE), "backing file differs from the device");
            Files.delete(backing);
        }
        assertEquals(List.of(), Guest.ublkNodes());
    }

    static String hex(byte[] bytes) throws Exception {
        return HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(bytes));
    }
}
