package io.nbdgate.gateway.control;

import io.nbdgate.gateway.config.ProcessUser;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.attribute.PosixFilePermissions;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Stable paths by name: {@code /dev/nbdgate/NAME -> /dev/ublkbN} while a device is served, so fstab and
 * scripts need not know N. The daemon makes the link itself, which works with or without udev. For systemd
 * (an fstab mount waits for the {@code dev-nbdgate-NAME.device} unit, which only udev can announce) it also
 * writes {@code /run/nbdgate/names/ublkbN} ({@code NBDGATE_NAME=NAME}) and asks the kernel for a "change"
 * uevent on the disk; conf/60-nbdgate.rules turns that into the same link on udev's side.
 */
public final class DeviceLinks {
    private static final Logger LOG = LoggerFactory.getLogger(DeviceLinks.class);

    private final Path linkDir;
    private final Path namesDir;
    private final Path sysBlock;
    private final boolean enabled;

    public DeviceLinks(Path linkDir, Path namesDir, Path sysBlock) {
        this(linkDir, namesDir, sysBlock, true);
    }

    private DeviceLinks(Path linkDir, Path namesDir, Path sysBlock, boolean enabled) {
        this.linkDir = linkDir;
        this.namesDir = namesDir;
        this.sysBlock = sysBlock;
        this.enabled = enabled;
    }

    /** /dev/nbdgate (NBDGATE_LINK_DIR or -Dnbdgate.linkDir for tests), names under the run dir, /sys/block. */
    public static DeviceLinks system() {
        String dir = System.getProperty("nbdgate.linkDir", System.getenv("NBDGATE_LINK_DIR"));
        // /dev/nbdgate and udev's names are root's: a rootless process's devices go without them, quietly.
        boolean enabled = dir != null || ProcessUser.root();
        return new DeviceLinks(Path.of(dir != null ? dir : "/dev/nbdgate"), ControlServer.runDir().resolve("names"),
                Path.of("/sys/block"), enabled);
    }

    /** Refuses names that would leave the link directory; the config schema refuses them earlier. */
    static void checkName(String name) {
        if (name.isEmpty() || name.contains("/") || name.equals(".") || name.equals("..") || name.contains("\0")) {
            throw new IllegalArgumentException("device name '" + name + "' cannot be a file name");
        }
    }

    /** Links NAME to the device; a failure is logged, since the device itself works without its link. */
    public void publish(String name, String blockDevice) {
        checkName(name);
        if (!enabled) {
            return;
        }
        Path link = linkDir.resolve(name);
        try {
            ControlSocketAccess.createDirectories(linkDir);
            if (Files.isSymbolicLink(link)) {
                Path old = Files.readSymbolicLink(link);
                if (!old.toString().equals(blockDevice) && Files.exists(old)) {
                    LOG.warn("{}: {} already points to {} (another nbdgate process?); not linking {}", name, link,
                            old, blockDevice);
                    return;
                }
            } else if (Files.exists(link, LinkOption.NOFOLLOW_LINKS)) {
                LOG.warn("{}: {} exists and is not a link; not linking {}", name, link, blockDevice);
                return;
            }
            // A new link renamed over the old one: the name never points nowhere.
            Path tmp = linkDir.resolve("." + name + ".tmp" + ProcessHandle.current().pid());
            Files.deleteIfExists(tmp);
            Files.createSymbolicLink(tmp, Path.of(blockDevice));
            Files.move(tmp, link, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
            LOG.info("{}: {} -> {}", name, link, blockDevice);
        } catch (IOException e) {
            LOG.warn("{}: cannot create {}: {}", name, link, e.toString());
        }
        announce(name, blockDevice);
    }

    /** Removes the link if it is still ours, and the name udev reads. */
    public void withdraw(String name, String blockDevice) {
        checkName(name);
        if (!enabled) {
            return;
        }
        Path link = linkDir.resolve(name);
        try {
            if (Files.isSymbolicLink(link) && Files.readSymbolicLink(link).toString().equals(blockDevice)) {
                Files.delete(link);
            }
            Files.deleteIfExists(namesDir.resolve(kernelName(blockDevice)));
        } catch (IOException e) {
            LOG.warn("{}: cannot remove {}: {}", name, link, e.toString());
        }
    }

    public Path link(String name) {
        checkName(name);
        return linkDir.resolve(name);
    }

    // Writing "change" to the disk's uevent file makes the kernel send that event (kobject_synth_uevent);
    // udev, if it runs, re-reads its rules for the disk, and the shipped rule imports the name file.
    private void announce(String name, String blockDevice) {
        String kernel = kernelName(blockDevice);
        try {
            ControlSocketAccess.createDirectories(namesDir);
            Path file = namesDir.resolve(kernel);
            Files.writeString(file, "NBDGATE_NAME=" + name + "\n", StandardCharsets.UTF_8);
            // udev trusts what it imports: nobody else may rewrite the name, whatever the umask.
            Files.setPosixFilePermissions(file, PosixFilePermissions.fromString("rw-r--r--"));
            Path uevent = sysBlock.resolve(kernel).resolve("uevent");
            if (Files.exists(uevent)) {
                Files.writeString(uevent, "change", StandardCharsets.US_ASCII);
            }
        } catch (IOException e) {
            LOG.warn("{}: cannot tell udev its name: {}", name, e.toString());
        }
    }

    private static String kernelName(String blockDevice) {
        return Path.of(blockDevice).getFileName().toString();
    }
}
