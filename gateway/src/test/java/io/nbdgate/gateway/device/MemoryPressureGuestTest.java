package io.nbdgate.gateway.device;

import static io.nbdgate.gateway.device.GuestProcesses.awaitLines;
import static io.nbdgate.gateway.device.GuestProcesses.exec;
import static io.nbdgate.gateway.device.GuestProcesses.nbdgate;
import static io.nbdgate.gateway.device.GuestProcesses.run;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Swap on an nbdgate device, and a file system on another one being written, while a memory hog takes more
 * memory than the guest has left (most of it is set aside as huge pages first): the kernel must write pages out
 * through the daemon, which needs memory itself to do so. Nothing may hang or fail. The servers are nbdkits on the host (scripts/guest-run's host exports), their
 * files on the host's disk: a server inside the guest would have its own pages swapped out to the device it
 * serves, and swapping into the guest's memory would only move pages from one part of it to another.
 *
 * <p>The daemon runs as the product does (bin/nbdgate daemon: bin/daemon.jvmargs, MemoryGuard): its loops are
 * IO flushers, its heap fixed, its memory locked as it is touched. The test prints how much went to swap.
 *
 * <p>Before every thread of the daemon was an IO flusher ({@code IoFlusherExec}), a guest that had run 20 minutes
 * of other tests hung here: kswapd and a C1 compiler thread of the daemon blocked in I/O wait. The test runs in
 * the default suite, after whatever other classes its guest ran first, to keep proving that it no longer does.
 */
@Tag("ublk")
class MemoryPressureGuestTest {
    private static final long MIB = 1L << 20;

    @TempDir
    Path dir;

    private final List<String> swaps = new ArrayList<>();
    private final List<Path> mounts = new ArrayList<>();
    private Process daemon;
    private Path scratch;
    private final List<Path> images = new ArrayList<>();
    private static final Path HUGE_PAGES = Path.of("/proc/sys/vm/nr_hugepages");
    /** What the hog has to exceed: enough for the daemon, the writer and the kernel to run at ease without it. */
    private static final long USABLE_MIB = 1280;
    private long setAside;

    @AfterEach
    void cleanUp() throws Exception {
        if (setAside > 0) {
            Files.writeString(HUGE_PAGES, "0"); // the classes after this one get the whole guest again
        }
        for (String s : swaps) {
            exec("swapoff", s);
        }
        for (Path m : mounts) {
            exec("umount", "-l", m.toString());
        }
        if (daemon != null && daemon.isAlive()) {
            daemon.destroy();
            daemon.waitFor(120, TimeUnit.SECONDS);
        }
        for (Path image : images) {
            Files.deleteIfExists(image);
        }
        if (scratch != null) {
            exec("rm", "-rf", scratch.toString());
        }
    }

    @Test
    void swapAndAFileSystemOnNbdgateSurviveAMemoryHogLargerThanTheMemoryLeft() throws Exception {
        // The servers run on the host (guest-run's user network), as a remote server would: an nbdkit inside
        // the guest has its own pages swapped out to the device it serves, and stops.
        Path exports = Path.of(System.getenv("NBDGATE_RESULTS"), "host-exports");
        assertTrue(Files.isDirectory(exports), exports + " missing: the guest has no host exports (scripts/guest-run)");
        scratch = Files.createTempDirectory(Path.of(System.getProperty("nbdgate.scratch")), "pressure");
        String prefix = "pressure-" + ProcessHandle.current().pid();
        Path swapImage = exports.resolve(prefix + "-swap.img");
        Path fsImage = exports.resolve(prefix + "-fs.img");
        images.add(swapImage);
        images.add(fsImage);
        run("truncate", "-s", "2048M", swapImage.toString());
        run("truncate", "-s", "256M", fsImage.toString());
        Path cfg = dir.resolve("nbdgate.yaml");
        Files.writeString(cfg, """
                status: {listen: "off"}
                devices:
                  - {name: swap, uri: "nbd://10.0.2.100:10809/%s", queues: 1}
                  - {name: fs, uri: "nbd://10.0.2.100:10809/%s", queues: 1}
                """.formatted(swapImage.getFileName(), fsImage.getFileName()));
        Path out = dir.resolve("out");
        Path err = dir.resolve("err");
        daemon = nbdgate(out, err, "daemon", "--config", cfg.toString());
        List<String> lines = awaitLines(out, 2, daemon, err);
        String swapDev = lines.get(0).split(" ")[1];
        String fsDev = lines.get(1).split(" ")[1];

        run("mkswap", "-q", swapDev);
        run("swapon", "-p", "10", swapDev);
        swaps.add(swapDev);
        run("mkfs.ext4", "-q", "-F", fsDev);
        Path mnt = Files.createDirectories(dir.resolve("mnt"));
        run("mount", fsDev, mnt.toString());
        mounts.add(mnt);
        Path source = Files.createDirectories(scratch.resolve("source"));
        run("sh", "-c", "for i in 1 2 3 4 5 6 7 8; do head -c $((i * 2097152 + 777)) /dev/urandom > " + source
                + "/f$i; done");

        KernelLog log = KernelLog.mark("memory pressure");
        long swappedBefore = written(swapDev);
        Process writer = new ProcessBuilder("sh", "-c", "for r in 1 2 3; do for i in 1 2 3 4 5 6 7 8; do cp "
                + source + "/f$i " + mnt + "/f$i; sync; done; done").redirectErrorStream(true).start();
        // More than the memory left, less than that and swap: the kernel must swap, not kill. The hog is a
        // tmpfs filled with dd and read back (swapped out, then in): C-speed even under TCG, and no overcommit
        // check can refuse it the way it refuses one huge allocation. Random data: the kernel never writes a
        // zero-filled page to swap (it only notes it), and zswap would keep any page of one repeated word.
        // Most of the guest's memory goes to huge pages first, which nothing may use or swap: a hog a little
        // larger than what is left presses the kernel exactly as one larger than all of it, with a third of the
        // data to make and move under TCG.
        setAside = setAsideHugePages(USABLE_MIB);
        long hogMib = meminfoKib("MemAvailable") / 1024 + 512;
        Path hogDir = Files.createDirectories(dir.resolve("hog"));
        mounts.add(0, hogDir); // unmounted first if the test ends early
        Process hog = new ProcessBuilder("sh", "-c", "mount -t tmpfs -o size=8G hog " + hogDir + " && dd if=/dev/urandom of="
                + hogDir + "/fill bs=1M iflag=fullblock count=" + hogMib + " status=none && cat " + hogDir + "/fill > /dev/null; rc=$?; "
                + "rm -f " + hogDir + "/fill; umount " + hogDir + "; exit $rc").redirectErrorStream(true).start();
        assertTrue(hog.waitFor(15, TimeUnit.MINUTES), "the memory hog did not finish in 15 minutes (a hang?)");
        String hogOut = new String(hog.getInputStream().readAllBytes());
        assertEquals(0, hog.exitValue(), hogOut);
        assertTrue(writer.waitFor(10, TimeUnit.MINUTES), "the writer did not finish in 10 minutes");
        assertEquals(0, writer.exitValue(), new String(writer.getInputStream().readAllBytes()));
        long swapped = written(swapDev) - swappedBefore;
        System.out.printf("memory pressure: %d MiB swapped out through %s by a %d MiB hog%n", swapped / MIB, swapDev,
                hogMib);
        assertTrue(swapped > 64 * MIB, "only " + swapped / MIB + " MiB went to swap: no real pressure");
        assertTrue(daemon.isAlive(), "the daemon died under memory pressure: " + Files.readString(err));

        Files.writeString(HUGE_PAGES, "0");
        setAside = 0;
        run("swapoff", swapDev); // reads every swapped page back through the daemon
        swaps.remove(swapDev);
        String want = run("sh", "-c", "cd " + source + " && sha256sum f*");
        run("sh", "-c", "echo 3 > /proc/sys/vm/drop_caches");
        assertEquals(want, run("sh", "-c", "cd " + mnt + " && sha256sum f*"));
        run("umount", mnt.toString());
        mounts.remove(mnt);
        run("e2fsck", "-f", "-n", fsDev);
        log.assertNoUblkIoErrors();
        List<String> hung = log.linesSince().stream().filter(l -> l.contains("blocked for more than")).toList();
        assertEquals(List.of(), hung, "tasks hung under memory pressure");
    }

    private static long written(String dev) throws Exception {
        String[] f = Files.readString(Path.of("/sys/block", Path.of(dev).getFileName().toString(), "stat")).trim()
                .split("\\s+");
        return Long.parseLong(f[6]) * 512;
    }

    private static long meminfoKib(String field) throws Exception {
        return Files.readAllLines(Path.of("/proc/meminfo")).stream().filter(l -> l.startsWith(field + ":"))
                .map(l -> Long.parseLong(l.replaceAll("\\D", ""))).findFirst().orElseThrow();
    }

    /** Reserves huge pages until about {@code usableMib} of memory is left available; returns how many. */
    private static long setAsideHugePages(long usableMib) throws Exception {
        long pageKib = meminfoKib("Hugepagesize");
        long pages = Math.max(0, (meminfoKib("MemAvailable") - usableMib * 1024) / pageKib);
        Files.writeString(HUGE_PAGES, Long.toString(pages));
        long got = Long.parseLong(Files.readString(HUGE_PAGES).strip());
        System.out.printf("memory pressure: %d MiB set aside as huge pages, %d MiB left available%n",
                got * pageKib / 1024, meminfoKib("MemAvailable") / 1024);
        return got;
    }
}
