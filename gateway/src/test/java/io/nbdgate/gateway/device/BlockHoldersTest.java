package io.nbdgate.gateway.device;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Set;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Who holds a block device, read from a fake /proc and /sys tree, and from the real /proc with a real child. */
class BlockHoldersTest {
    private static final String MOUNTINFO = """
            22 1 259:2 / / rw,relatime shared:1 - ext4 /dev/nvme0n1p2 rw,errors=remount-ro
            25 22 0:23 / /proc rw,nosuid,nodev,noexec,relatime shared:12 - proc proc rw
            98 22 259:0 / /mnt/my\\040data rw,relatime shared:50 - ext4 /dev/ublkb0 rw
            99 22 259:1 /sub /srv/back\\134slash rw,relatime shared:51 master:3 - xfs /dev/ublkb0p1 rw
            100 22 0:45 /@home /home rw,relatime shared:52 - btrfs /dev/ublkb0p2 rw,space_cache=v2
            101 22 259:3 / /boot rw,relatime shared:53 - ext4 /dev/nvme0n1p3 rw
            """;

    @TempDir
    Path dir;

    @Test
    void mountinfoLinesMatchByMajorMinorOrSourceAndMountPointsAreUnescaped() {
        assertEquals(List.of("/mnt/my data", "/srv/back\\slash", "/home"), BlockHolders.mountPoints(MOUNTINFO,
                Set.of("259:0", "259:1"), Set.of("/dev/ublkb0", "/dev/ublkb0p1", "/dev/ublkb0p2")));
        assertEquals(List.of("/boot"), BlockHolders.mountPoints(MOUNTINFO, Set.of("259:3"), Set.of()));
        assertEquals(List.of(), BlockHolders.mountPoints(MOUNTINFO, Set.of("259:9"), Set.of("/dev/sdz")));
        assertEquals("a\tb\nc\\040", BlockHolders.unescape("a\\011b\\012c\\134040"));
    }

    @Test
    void fakeTreeNamesMountsStackedDevicesAndProcessesInOrder() throws Exception {
        Path proc = dir.resolve("proc");
        Path sys = dir.resolve("sys");
        write(proc.resolve("self/mountinfo"), MOUNTINFO);
        write(sys.resolve("block/ublkb0/dev"), "259:0\n");
        write(sys.resolve("block/ublkb0/ublkb0p1/dev"), "259:1\n");
        write(sys.resolve("block/ublkb0/ublkb0p1/partition"), "1\n");
        Files.createDirectories(sys.resolve("block/ublkb0/queue")); // not a partition: no "partition" file
        link(sys.resolve("block/ublkb0/holders/md127"), "../../md127");
        link(sys.resolve("block/ublkb0/ublkb0p1/holders/dm-3"), "../../../dm-3");
        write(sys.resolve("block/dm-3/dm/name"), "vg0-data\n");
        process(proc, 300, "qemu-nbd", "/dev/ublkb0", "/dev/ublkb0");
        process(proc, 100, "fio", "/dev/null", "/dev/ublkb0p1");
        process(proc, 200, "bash", "/dev/sda");
        process(proc, ProcessHandle.current().pid(), "java", "/dev/ublkb0");
        Files.createDirectories(proc.resolve("400")); // exited between listing and reading: no fd dir
        Files.createDirectories(proc.resolve("sys"));

        List<String> holders = new BlockHolders(proc, sys).holders("/dev/ublkb0");

        assertEquals(List.of("mounted on /mnt/my data", "mounted on /srv/back\\slash", "used by md127",
                "used by dm-3 (vg0-data)", "pid 100 (fio)", "pid 300 (qemu-nbd)"), holders);
        assertEquals("/dev/ublkb0 is in use: mounted on /mnt/my data; mounted on /srv/back\\slash; used by md127; "
                + "used by dm-3 (vg0-data); pid 100 (fio); pid 300 (qemu-nbd)", BlockHolders.describe("/dev/ublkb0", holders));
        // A partition asked for directly is found through /sys/class/block and holds only what is its own.
        link(sys.resolve("class/block/ublkb0p1"), sys.resolve("block/ublkb0/ublkb0p1").toString());
        assertEquals(List.of("mounted on /srv/back\\slash", "used by dm-3 (vg0-data)", "pid 100 (fio)"),
                new BlockHolders(proc, sys).holders("/dev/ublkb0p1"));
    }

    @Test
    void aDeviceNobodyHoldsHasNoHoldersAndSaysWhereElseToLook() throws Exception {
        write(dir.resolve("sys/block/ublkb1/dev"), "259:7\n");
        List<String> holders = new BlockHolders(dir.resolve("proc"), dir.resolve("sys")).holders("/dev/ublkb1");
        assertEquals(List.of(), holders);
        assertEquals("/dev/ublkb1 is in use (no holder found in /proc: another namespace, or a kernel user)",
                BlockHolders.describe("/dev/ublkb1", holders));
    }

    @Test
    void aRealChildHoldingAFileIsNamedByPidAndCommand() throws Exception {
        Path file = Files.writeString(dir.resolve("held"), "x").toRealPath();
        Process child = new ProcessBuilder("sleep", "30").redirectInput(file.toFile()).start();
        try {
            BlockHolders real = new BlockHolders(Path.of("/proc"), Path.of("/sys"));
            List<String> expected = List.of("pid " + child.pid() + " (sleep)");
            // start() returns once the child exec'd; poll briefly in case comm still shows the launcher.
            List<String> seen = real.processesHolding(Set.of(file.toString()));
            for (int i = 0; i < 50 && !seen.equals(expected); i++) {
                Thread.sleep(100);
                seen = real.processesHolding(Set.of(file.toString()));
            }
            assertEquals(expected, seen);
        } finally {
            child.destroyForcibly().waitFor(10, TimeUnit.SECONDS);
        }
    }

    private static void process(Path proc, long pid, String comm, String... fds) throws Exception {
        Path p = proc.resolve(Long.toString(pid));
        write(p.resolve("comm"), comm + "\n");
        Files.createDirectories(p.resolve("fd"));
        for (int fd = 0; fd < fds.length; fd++) {
            link(p.resolve("fd/" + fd), fds[fd]);
        }
    }

    private static void write(Path file, String text) throws Exception {
        Files.createDirectories(file.getParent());
        Files.writeString(file, text);
    }

    /** Targets need not exist: only the link text is read, as the kernel's /proc/PID/fd links are. */
    private static void link(Path at, String target) throws Exception {
        Files.createDirectories(at.getParent());
        Files.createSymbolicLink(at, Path.of(target));
    }
}
