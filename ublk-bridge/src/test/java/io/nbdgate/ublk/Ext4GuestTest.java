package io.nbdgate.ublk;

import static org.junit.jupiter.api.Assertions.*;

import io.nbdgate.ublk.target.FileTarget;
import io.netty.channel.MultiThreadIoEventLoopGroup;
import java.io.RandomAccessFile;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

/** A real file system on the device: mkfs.ext4, files, umount, mount again, same checksums. */
@Tag("ublk")
class Ext4GuestTest {
    static final long SIZE = 96L << 20;

    @ParameterizedTest
    @EnumSource(BufferMode.class)
    void filesSurviveRemount(BufferMode mode) throws Exception {
        Path backing = Path.of("/tmp/ext4-" + mode.label() + ".img");
        try (RandomAccessFile f = new RandomAccessFile(backing.toFile(), "rw")) {
            f.setLength(SIZE);
        }
        Path mnt = Files.createDirectories(Path.of("/tmp/mnt-" + mode.label()));
        MultiThreadIoEventLoopGroup group = Guest.loops(1);
        try (ControlDevice ctl = ControlDevice.open();
             FileTarget target = FileTarget.open(backing.toString());
             UblkDevice dev = UblkDevice.create(ctl, DeviceSpec.of(1, 64).withMode(mode),
                     DeviceParams.disk(SIZE, 512 * 1024))) {
            dev.start(Guest.list(group), q -> target);
            String bdev = dev.blockDevice();
            Guest.run("mkfs.ext4", "-q", "-F", bdev);
            Guest.run("mount", bdev, mnt.toString());
            try {
                for (int i = 0; i < 3; i++) {
                    Guest.run("dd", "if=/dev/urandom", "of=" + mnt.resolve("f" + i), "bs=1M", "count=" + (4 + i * 3),
                            "status=none");
                }
                Files.writeString(mnt.resolve("hello.txt"), "written through ublk in " + mode.label() + " mode\n");
                Guest.run("sh", "-c", "cd " + mnt + " && sha256sum f0 f1 f2 hello.txt > /tmp/sums-" + mode.label());
            } finally {
                Guest.run("umount", mnt.toString());
            }
            Guest.run("mount", bdev, mnt.toString());
            try {
                String check = Guest.run("sh", "-c", "cd " + mnt + " && sha256sum -c /tmp/sums-" + mode.label());
                assertEquals(4, check.lines().filter(l -> l.endsWith(": OK")).count(), check);
            } finally {
                Guest.run("umount", mnt.toString());
            }
            Guest.run("fsck.ext4", "-n", "-f", bdev);
        } finally {
            group.shutdownGracefully().sync();
        }
        // The file system is in the backing file: check it there too, with the device gone.
        Guest.run("fsck.ext4", "-n", "-f", backing.toString());
        Files.delete(backing);
        assertEquals(List.of(), Guest.ublkNodes());
    }
}
