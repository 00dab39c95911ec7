package io.nbdgate.ublk;

import io.nbdgate.uring.Errno;
import io.nbdgate.uring.LinuxCalls;
import io.nbdgate.uring.UringException;
import java.io.IOException;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The /dev nodes of ublk devices, which devtmpfs makes and removes asynchronously: waiting for them to
 * appear (and be the right device) or go, opening /dev/ublkcN, and listing the devices present.
 */
public final class DeviceNodes {
    private static final Logger LOG = LoggerFactory.getLogger(DeviceNodes.class);
    private static final long NODE_TIMEOUT_MS = 30_000;
    // udev runs a JVM for the ownership (nbdgate udev-owner): seconds on a real machine, more in the test guest.
    private static final long ACCESS_TIMEOUT_MS = 120_000;
    private static final int S_IFMT = 0170000;
    private static final int S_IFBLK = 0060000;

    private DeviceNodes() {
    }

    /**
     * devtmpfs creates the node asynchronously, and callers hand the path to users right away: wait
     * until it is a block node with this disk's device number. Any file at the path is not enough (a
     * tool that opens a missing path with O_CREAT leaves a regular file there, which would swallow
     * every write meant for the device). Fails rather than report a path that is not the device.
     */
    static void awaitBlockNode(int id) throws InterruptedException {
        long deadline = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(NODE_TIMEOUT_MS);
        String problem;
        while ((problem = nodeProblem(id)) != null) {
            if (System.nanoTime() > deadline) {
                throw new IllegalStateException("ublk device " + id + " started, but after " + NODE_TIMEOUT_MS
                        + " ms " + problem);
            }
            Thread.sleep(20);
        }
    }

    /**
     * Waits until this process may read and write {@code node}: an unprivileged device's nodes are made for
     * root, and udev hands them to the device's owner (conf/99-nbdgate-rootless.rules). Fails with one line
     * that names the rule when that does not happen.
     */
    static void awaitAccess(String node) throws InterruptedException {
        Path p = Path.of(node);
        long deadline = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(ACCESS_TIMEOUT_MS);
        while (!(Files.isReadable(p) && Files.isWritable(p))) {
            if (System.nanoTime() > deadline) {
                throw new IllegalStateException(node + " is not readable and writable by this user after "
                        + ACCESS_TIMEOUT_MS / 1000 + " s: udev must hand an unprivileged ublk device to its owner"
                        + " (install the rule 99-nbdgate-rootless.rules: /usr/lib/nbdgate/udev in the package, conf/ in the source; README, Rootless devices)");
            }
            Thread.sleep(50);
        }
    }

    /** Why /dev/ublkbN is not (yet) device N's block node; null when it is. */
    static String nodeProblem(int devId) {
        Path node = Path.of(ControlDevice.blockDevice(devId));
        return nodeProblem(node, Path.of("/sys/block", node.getFileName().toString(), "dev"));
    }

    /** Why {@code node} is not (yet) the block node of the disk {@code sysDev} describes; null when it is. */
    static String nodeProblem(Path node, Path sysDev) {
        String want;
        try {
            want = Files.readString(sysDev).trim();
        } catch (IOException e) {
            return sysDev + " is not readable";
        }
        try {
            var attrs = Files.readAttributes(node, "unix:mode,rdev");
            if (((Integer) attrs.get("mode") & S_IFMT) != S_IFBLK) {
                return node + " exists but is not a block device";
            }
            String have = devNumber((Long) attrs.get("rdev"));
            return have.equals(want) ? null : node + " is block device " + have + ", the disk is " + want;
        } catch (IOException e) {
            return node + " does not exist";
        }
    }

    /** "major:minor" of a glibc dev_t, as /sys/block/X/dev prints it. */
    static String devNumber(long rdev) {
        long major = ((rdev & 0x00000000000fff00L) >>> 8) | ((rdev & 0xfffff00000000000L) >>> 32);
        long minor = (rdev & 0x00000000000000ffL) | ((rdev & 0x00000ffffff00000L) >>> 12);
        return major + ":" + minor;
    }

    /** Opens /dev/ublkcN, waiting for devtmpfs to create it after ADD_DEV. */
    static int openCharDevice(int devId) throws UringException, InterruptedException {
        String path = ControlDevice.charDevice(devId);
        for (int attempt = 0; ; attempt++) {
            try {
                // O_NONBLOCK: /dev/ublkcN sets no FMODE_NOWAIT and has no poll, so io_uring would hand every
                // READ/WRITE on it (user copy, staged replies) to an io-wq worker thread: a thread switch and a
                // second wake-up per request. With O_NONBLOCK io_uring runs them inline; the copies never block,
                // and the I/O commands (URING_CMD) ignore the flag.
                return LinuxCalls.open(path, LinuxCalls.O_RDWR | LinuxCalls.O_NONBLOCK, 0);
            } catch (UringException e) {
                if (e.errno() != Errno.ENOENT || attempt >= 50) {
                    throw e;
                }
                Thread.sleep(20); // the node appears shortly after ADD_DEV
            }
        }
    }

    /**
     * devtmpfs removes /dev/ublkbN and /dev/ublkcN after DEL_DEV returns, asynchronously. A device added
     * with the same id before that can end up behind the stale nodes (old device numbers), so deletion
     * is only done once they are gone.
     */
    static void awaitNodesGone(int devId) {
        Path b = Path.of(ControlDevice.blockDevice(devId));
        Path c = Path.of(ControlDevice.charDevice(devId));
        for (int i = 0; i < 300 && (Files.exists(b) || Files.exists(c)); i++) {
            try {
                Thread.sleep(20);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                return;
            }
        }
        if (Files.exists(b) || Files.exists(c)) {
            LOG.warn("ublk device {} deleted, but its /dev nodes are still there after 6 s", devId);
        }
    }

    /** Ids of all ublk devices present (from /dev/ublkc*). */
    public static List<Integer> presentDevices() {
        List<Integer> ids = new ArrayList<>();
        try (DirectoryStream<Path> ds = Files.newDirectoryStream(Path.of("/dev"), "ublkc*")) {
            for (Path p : ds) {
                ids.add(Integer.parseInt(p.getFileName().toString().substring("ublkc".length())));
            }
        } catch (IOException | NumberFormatException e) {
            LOG.warn("listing /dev/ublkc*: {}", e.toString());
        }
        ids.sort(null);
        return ids;
    }
}
