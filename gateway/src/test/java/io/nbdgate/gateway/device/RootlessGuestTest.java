package io.nbdgate.gateway.device;

import static io.nbdgate.gateway.device.GuestProcesses.awaitLines;
import static io.nbdgate.gateway.device.GuestProcesses.exec;
import static io.nbdgate.gateway.device.GuestProcesses.run;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import io.nbdgate.gateway.testsupport.ExternalNbdServer;
import io.nbdgate.ublk.DeviceNodes;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A user other than root attaches a device of their own: a real udevd (Debian's, unpacked by scripts/test-ublk)
 * runs conf/99-nbdgate-rootless.rules, which opens /dev/ublk-control to users and hands the new device's nodes to
 * its owner through {@code nbdgate udev-owner}; the user's fio verifies the device, another user cannot open it,
 * and the user detaches it. Nothing here runs the user's commands as root.
 */
@Tag("ublk")
class RootlessGuestTest {
    private static final int USER = 65534;   // nobody
    private static final int OTHER = 1;      // daemon: another user without privileges
    private static final Path BASE = Path.of("/tmp/rootless");

    @TempDir
    Path dir;

    private static final List<Path> HOST_RULES = List.of(Path.of("/usr/lib/udev/rules.d"), Path.of("/etc/udev/rules.d"));

    private Process udevd;
    private Process attach;
    private final List<Path> covered = new ArrayList<>();

    @AfterEach
    void cleanUp() throws Exception {
        if (attach != null && attach.isAlive()) {
            attach.destroy();
            attach.waitFor(60, TimeUnit.SECONDS);
        }
        if (udevd != null) {
            udevd.destroy();
            udevd.waitFor(30, TimeUnit.SECONDS);
        }
        for (Path d : covered) {
            exec("umount", d.toString());
        }
        exec("chmod", "600", "/dev/ublk-control");
        assertTrue(DeviceNodes.presentDevices().isEmpty(), "ublk devices left behind: " + DeviceNodes.presentDevices());
    }

    @Test
    void aUserOtherThanRootAttachesVerifiesWithFioAndDetachesTheirOwnDevice() throws Exception {
        Path install = installForEveryone();
        startUdevd(install);
        Path runtime = Files.createDirectories(Path.of("/run/user/" + USER));
        run("chown", USER + ":" + USER, runtime.toString());
        run("chmod", "700", runtime.toString());
        try (ExternalNbdServer server = ExternalNbdServer.nbdkit(dir, List.of(), "memory", "64M")) {
            Path out = BASE.resolve("attach.out");
            Path err = BASE.resolve("attach.err");
            attach = asUser(USER, install.resolve("bin/nbdgate").toString(), "attach",
                    "nbd://127.0.0.1:" + server.port() + "/disk", "--name", "mine")
                    .redirectOutput(out.toFile()).redirectError(err.toFile()).start();
            String dev = awaitLines(out, 1, attach, err).getFirst();
            String log = Files.readString(err);
            assertTrue(log.contains("unprivileged") && log.contains("buffer mode copy"), log);
            // What a user cannot have (memory lock, IO flusher, OOM exemption, /dev/nbdgate) is no WARN for them.
            assertTrue(log.lines().noneMatch(l -> l.contains(" WARN ") && (l.contains("mlockall")
                    || l.contains("IO_FLUSHER") || l.contains("oom_score_adj") || l.contains("/dev/nbdgate"))), log);
            String charDev = dev.replace("ublkb", "ublkc");
            assertEquals(USER + " " + USER, run("stat", "-c", "%u %g", dev).trim(), "owner of " + dev);
            assertEquals(USER + " " + USER, run("stat", "-c", "%u %g", charDev).trim(), "owner of " + charDev);

            GuestProcesses.Result fio = execAsUser(USER, "fio", "--name=rootless", "--filename=" + dev,
                    "--allow_file_create=0", "--rw=randwrite", "--bssplit=4k/60:64k/30:256k/10", "--iodepth=16",
                    "--ioengine=io_uring", "--direct=1", "--size=24M", "--verify=crc32c", "--verify_fatal=1",
                    "--do_verify=1", "--verify_state_save=0", "--output-format=terse");
            assertEquals(0, fio.exit(), "fio as the owner:\n" + fio.output());

            // The kernel lets only the owner (and root) open an unprivileged disk, whatever the node's mode says.
            run("chmod", "666", dev);
            GuestProcesses.Result other = execAsUser(OTHER, "dd", "if=" + dev, "of=/dev/null", "bs=4096", "count=1",
                    "iflag=direct");
            assertNotEquals(0, other.exit(), "another user read the device:\n" + other.output());

            GuestProcesses.Result list = execAsUser(USER, install.resolve("bin/nbdgate").toString(), "list");
            assertEquals(0, list.exit(), list.output());
            assertTrue(list.output().contains("mine") && list.output().contains(dev) && list.output().contains("copy"),
                    list.output());

            GuestProcesses.Result detach = execAsUser(USER, install.resolve("bin/nbdgate").toString(), "detach", "mine");
            assertEquals(0, detach.exit(), detach.output());
            if (!attach.waitFor(60, TimeUnit.SECONDS)) {
                fail("attach must exit once its device is detached:\n" + Files.readString(err));
            }
            assertEquals(0, attach.exitValue(), Files.readString(err));
            assertTrue(!Files.exists(Path.of(dev)), dev + " still exists");
        }
    }

    /**
     * The launcher, its JVM options and the jar where every user can read them (the checkout may sit under a
     * directory only root can enter), laid out as bin/nbdgate expects.
     */
    private static Path installForEveryone() throws Exception {
        Path install = BASE.resolve("nbdgate");
        Files.createDirectories(install.resolve("bin"));
        Files.createDirectories(install.resolve("gateway/target"));
        for (String f : List.of("bin/nbdgate", "bin/daemon.jvmargs", "bin/client.jvmargs", "gateway/target/nbdgate.jar")) {
            Files.copy(GuestProcesses.ROOT.resolve(f), install.resolve(f), StandardCopyOption.REPLACE_EXISTING);
        }
        run("chmod", "-R", "a+rX", BASE.toString());
        run("chmod", "a+w", BASE.toString());
        return install;
    }

    /**
     * udevd with the project's rootless rule and no other (the host's rules directory is covered for the test),
     * then the "add" event of /dev/ublk-control replayed so the rule opens it, as at boot.
     */
    private void startUdevd(Path install) throws Exception {
        Path udevadm = Path.of(System.getProperty("user.home"), ".cache/nbdgate/udev/bin/udevadm");
        assertTrue(Files.isExecutable(udevadm), udevadm + " is missing: scripts/test-ublk unpacks Debian's udev there");
        String rule = Files.readString(GuestProcesses.ROOT.resolve("conf/99-nbdgate-rootless.rules"))
                .replace("/usr/bin/nbdgate", install.resolve("bin/nbdgate").toString());
        assertTrue(rule.contains(install.resolve("bin/nbdgate") + " udev-owner %k"), rule);
        // The host's own rules stay out of this udevd (the guest's root is the host's file system, shared).
        for (Path d : HOST_RULES) {
            if (Files.isDirectory(d)) {
                run("mount", "-t", "tmpfs", "none", d.toString());
                covered.add(d);
            }
        }
        Files.createDirectories(Path.of("/run/udev/rules.d"));
        Files.writeString(Path.of("/run/udev/rules.d/99-nbdgate-rootless.rules"), rule);
        Path daemon = BASE.resolve("systemd-udevd");
        Files.deleteIfExists(daemon);
        Files.createSymbolicLink(daemon, udevadm); // udevadm runs as the daemon under this name
        udevd = new ProcessBuilder(daemon.toString()).redirectErrorStream(true)
                .redirectOutput(BASE.resolve("udevd.log").toFile()).start();
        for (int i = 0; !Files.exists(Path.of("/run/udev/control")); i++) {
            assertTrue(udevd.isAlive() && i < 600, () -> "udevd did not start: " + read(BASE.resolve("udevd.log")));
            Thread.sleep(100);
        }
        run(udevadm.toString(), "trigger", "--action=add", "--sysname-match=ublk-control");
        run(udevadm.toString(), "settle", "--timeout=60");
        assertEquals("666", run("stat", "-c", "%a", "/dev/ublk-control").trim(), "the rule opens /dev/ublk-control");
    }

    private static ProcessBuilder asUser(int uid, String... cmd) {
        List<String> c = new ArrayList<>(List.of("setpriv", "--reuid=" + uid, "--regid=" + uid, "--clear-groups",
                "env", "-i", "PATH=/usr/local/bin:/usr/bin:/bin", "HOME=" + BASE, "LANG=C.UTF-8"));
        c.addAll(List.of(cmd));
        return new ProcessBuilder(c).directory(BASE.toFile());
    }

    private static GuestProcesses.Result execAsUser(int uid, String... cmd) throws Exception {
        return exec(asUser(uid, cmd));
    }

    private static String read(Path p) {
        try {
            return Files.readString(p);
        } catch (Exception e) {
            return "(" + e + ")";
        }
    }
}
