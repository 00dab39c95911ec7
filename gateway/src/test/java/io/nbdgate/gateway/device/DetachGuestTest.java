package io.nbdgate.gateway.device;

import static io.nbdgate.gateway.device.GuestProcesses.awaitLines;
import static io.nbdgate.gateway.device.GuestProcesses.exec;
import static io.nbdgate.gateway.device.GuestProcesses.nbdgate;
import static io.nbdgate.gateway.device.GuestProcesses.run;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import io.nbdgate.gateway.control.ControlClient;
import io.nbdgate.gateway.testsupport.ExternalNbdServer;
import io.nbdgate.ublk.DeviceNodes;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A device's end at the edges, through bin/nbdgate as an administrator meets it: a detach while it is in use
 * (refused with the holder named, --force, --deferred), a removal by another ublk tool, and SIGTERM with a
 * file system still mounted. Every wait is bounded; the times are printed for the record.
 */
@Tag("ublk")
class DetachGuestTest {
    private static final Pattern DEV = Pattern.compile("/dev/ublkb(\\d+)");

    @TempDir
    Path dir;

    private Process serving;
    private Path err;
    private final List<ExternalNbdServer> servers = new ArrayList<>();
    private final List<Process> users = new ArrayList<>();
    private final List<Path> mounts = new ArrayList<>();
    private final Map<Process, Path> fioLogs = new java.util.HashMap<>();

    @AfterEach
    void cleanUp() throws Exception {
        for (Process p : users) {
            p.destroyForcibly();
            p.waitFor(10, TimeUnit.SECONDS);
        }
        for (Path m : mounts) {
            exec("umount", "-l", m.toString());
        }
        if (serving != null && serving.isAlive()) {
            serving.destroy();
            serving.waitFor(90, TimeUnit.SECONDS);
        }
        for (ExternalNbdServer s : servers) {
            s.close();
        }
        assertTrue(DeviceNodes.presentDevices().isEmpty(), "ublk devices left behind: " + DeviceNodes.presentDevices());
    }

    @Test
    void aDeviceInUseIsRefusedWithItsHolderNamedThenForcedOrDeferredWhileItsNeighboursServeOn() throws Exception {
        // a: fio, refused, then its server dies and --force removes it anyway; b: ext4, refused, detached once
        // unmounted; c: fio, detached --deferred when fio ends.
        Map<String, String> devs = daemon("", "a", "b", "c");
        String a = devs.get("a");
        String b = devs.get("b");
        String c = devs.get("c");
        Path mnt = dir.resolve("mnt");
        run("mkfs.ext4", "-q", "-F", b);
        Files.createDirectories(mnt);
        run("mount", b, mnt.toString());
        mounts.add(mnt);
        Process fio = fio(a, 600);
        FioJob.awaitWritten(id(a), 1 << 20, "fio", fio, () -> output(fio), Duration.ofMinutes(3));

        Timed busy = cli("detach", "a");
        assertEquals(1, busy.result().exit(), busy.result().output());
        assertTrue(busy.result().output().contains("is in use: pid " + fio.pid() + " (fio)"), busy.result().output());
        assertTrue(busy.result().output().contains("--force"), "the refusal says what else can be done");
        assertTrue(fio.isAlive(), "a refused detach leaves fio alone:\n" + output(fio));
        Timed mounted = api("b", "refuse");
        assertEquals(1, mounted.result().exit(), mounted.result().output());
        assertTrue(mounted.result().output().contains("is in use: mounted on " + mnt), mounted.result().output());

        servers.getFirst().kill(); // a's server gone for good: its requests wait for a reconnect that never comes
        Timed forced = api("a", "force");
        assertEquals(0, forced.result().exit(), () -> forced.result().output() + "\n" + diagnoseQuietly());
        assertTrue(forced.result().output().contains("detached=" + a), forced.result().output());
        long t0 = System.nanoTime();
        if (!fio.waitFor(60, TimeUnit.SECONDS)) {
            fail("fio still runs 60 s after a forced detach:\n" + output(fio) + "\n" + diagnose());
        }
        long fioEnded = TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - t0);
        assertTrue(fio.exitValue() != 0 && output(fio).contains("Input/output error"), output(fio));
        assertFalse(Files.exists(Path.of(a)), a + " is still there after --force");

        run("sh", "-c", "head -c 4194304 /dev/urandom > " + mnt + "/after && sync"); // b did not notice
        run("umount", mnt.toString());
        mounts.remove(mnt);
        Timed unmounted = api("b", "refuse");
        assertEquals(0, unmounted.result().exit(), unmounted.result().output());
        assertFalse(Files.exists(Path.of(b)), b + " is still there");

        Process heldFio = fio(c, 600); // ended by the test below: a guest CLI call can take a minute under load
        FioJob.awaitWritten(id(c), 1 << 20, "fio", heldFio, () -> output(heldFio), Duration.ofMinutes(3));
        Timed deferred = cli("detach", "c", "--deferred");
        assertEquals(0, deferred.result().exit(), deferred.result().output());
        assertTrue(deferred.result().output().contains("will be detached when its last user closes it"),
                deferred.result().output());
        String listed = ControlClient.devices().toString();
        assertTrue(listed.contains("detach pending"), listed);
        Thread.sleep(2000); // two rounds of the deferred detach's check, with fio still holding the device
        assertTrue(heldFio.isAlive() && Files.exists(Path.of(c)), "a deferred detach waits for fio to end");
        heldFio.destroy(); // SIGTERM: fio stops its job and closes the device
        if (!heldFio.waitFor(120, TimeUnit.SECONDS)) {
            fail("fio did not end on SIGTERM:\n" + output(heldFio));
        }
        assertTrue(!output(heldFio).contains("Input/output error"), output(heldFio));
        long gone = awaitGone(c, Duration.ofSeconds(20));
        assertTrue(serving.isAlive(), "the daemon serves on with no device");
        System.out.printf("detach: refused (fio) in %d ms (CLI) and (mounted) in %d ms (API); --force with the "
                        + "server gone in %d ms, fio saw EIO %d ms later; after umount in %d ms; --deferred answered "
                        + "in %d ms, device gone %d ms after fio ended%n", busy.millis(), mounted.millis(),
                forced.millis(), fioEnded, unmounted.millis(), deferred.millis(), gone);
    }

    @Test
    void aDeviceRemovedByAnotherProcessIsLetGoAtOnceAndReportedWhileTheOtherServes() throws Exception {
        Map<String, String> devs = daemon("", "a", "b");
        String a = devs.get("a");
        String b = devs.get("b");
        Process fio = fio(a, 600);
        FioJob.awaitWritten(id(a), 1 << 20, "fio", fio, () -> output(fio), Duration.ofMinutes(3));

        Timed del = ublkDel(id(a));
        if (!fio.waitFor(60, TimeUnit.SECONDS)) {
            fail("fio still runs 60 s after its device was deleted:\n" + output(fio) + "\n" + diagnose());
        }
        assertTrue(serving.isAlive(), "the daemon keeps running");
        String log = Files.readString(err);
        assertEquals(1, log.lines().filter(l -> l.contains("ERROR") && l.contains(a)
                && l.contains("by another process")).count(), log);
        Timed list = cli("list");
        assertTrue(list.result().output().lines().anyMatch(l -> l.startsWith("a ") && l.contains("removed")),
                "list shows the device as removed:\n" + list.result().output());
        run("dd", "if=/dev/urandom", "of=" + b, "bs=64k", "count=32", "oflag=direct", "status=none");
        run("dd", "if=" + b, "of=/dev/null", "bs=64k", "count=32", "iflag=direct", "status=none");

        Timed idle = ublkDel(id(b));
        assertFalse(Files.exists(Path.of(b)), b + " is still there");
        Timed dropped = api("a", "refuse"); // the removed entry goes from the list
        assertEquals(0, dropped.result().exit(), dropped.result().output());
        System.out.printf("removal from outside: with fio %s (tool %d ms), idle %s (tool %d ms)%n",
                del.result().output().strip(), del.millis(), idle.result().output().strip(), idle.millis());
    }

    @Test
    void reloadAndAttachDaemonAddAndRemoveDevicesWhileFioVerifiesAnother() throws Exception {
        Map<String, String> devs = daemon("", "a", "b");
        String a = devs.get("a");
        String b = devs.get("b");
        ExternalNbdServer serverC = ExternalNbdServer.nbdkit(Files.createDirectories(dir.resolve("s-c")), List.of(),
                "memory", "64M");
        servers.add(serverC);
        Path mnt = dir.resolve("mnt");
        run("mkfs.ext4", "-q", "-F", b);
        Files.createDirectories(mnt);
        run("mount", b, mnt.toString());
        mounts.add(mnt);
        Path fioLog = dir.resolve("fio-verify.log");
        Process fio = new ProcessBuilder("fio", "--name=undisturbed", "--filename=" + a, "--allow_file_create=0",
                "--thread", "--direct=1", "--ioengine=io_uring", "--iodepth=8", "--rw=randwrite", "--bs=4k",
                "--size=24M", "--verify=crc32c", "--verify_fatal=1", "--do_verify=1").redirectErrorStream(true)
                .redirectOutput(fioLog.toFile()).start();
        users.add(fio);
        FioJob.awaitWritten(id(a), 1 << 20, "fio", fio, () -> read(fioLog), Duration.ofMinutes(3));

        // b out, c in, a as it was; SIGHUP as systemctl reload sends it.
        writeConfig(List.of(servers.get(0), serverC), "", "a", "c");
        run("kill", "-HUP", Long.toString(serving.pid()));
        String c = awaitLog("c: attached as ", Duration.ofMinutes(3));
        awaitLog("b: removed from the file but " + b + " is in use: mounted on " + mnt, Duration.ofMinutes(1));
        assertTrue(Files.exists(Path.of(b)), "a refused removal leaves " + b + " attached");
        String dev = c.substring(c.indexOf("/dev/ublkb")).strip();
        run("dd", "if=/dev/urandom", "of=" + dev, "bs=64k", "count=16", "oflag=direct", "status=none");

        // `nbdgate attach --daemon`: one more device in the running daemon, not from its file.
        ExternalNbdServer serverR = ExternalNbdServer.nbdkit(Files.createDirectories(dir.resolve("s-r")), List.of(),
                "memory", "64M");
        servers.add(serverR);
        String rUri = "nbd://127.0.0.1:" + serverR.port() + "/";
        Timed runtime = cli("attach", rUri, "--daemon", "--name", "rt", "--queues", "1");
        assertEquals(0, runtime.result().exit(), runtime.result().output());
        String rt = runtime.result().output().strip();
        assertTrue(rt.matches("/dev/ublkb\\d+"), rt);
        Path data = dir.resolve("rt-data");
        run("dd", "if=/dev/urandom", "of=" + data, "bs=1M", "count=2", "status=none");
        run("dd", "if=" + data, "of=" + rt, "bs=1M", "oflag=direct", "status=none");
        run("cmp", "-n", "2097152", data.toString(), rt);
        Timed clash = cli("attach", rUri, "--daemon", "--name", "a");
        assertEquals(1, clash.result().exit(), clash.result().output());
        assertTrue(clash.result().output().contains("a device named 'a' is served already"), clash.result().output());

        run("umount", mnt.toString());
        mounts.remove(mnt);
        long t0 = System.nanoTime();
        List<String> again = ControlClient.reload(); // what `nbdgate reload` prints (its CLI is a host test's)
        long reloadMillis = TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - t0);
        assertTrue(again.contains("b: detached " + b), again.toString());
        assertFalse(Files.exists(Path.of(b)), b + " is still there after the second reload");
        assertTrue(again.stream().noneMatch(l -> l.startsWith("rt:")), "a reload must leave rt alone: " + again);
        run("cmp", "-n", "2097152", data.toString(), rt);
        Timed gone = cli("detach", "rt");
        assertEquals(0, gone.result().exit(), gone.result().output());
        assertFalse(Files.exists(Path.of(rt)), rt + " is still there after detach");

        Files.writeString(dir.resolve("nbdgate.yaml"), "devices: [ {name: a\n");
        List<String> broken = ControlClient.reload();
        assertEquals(1, broken.size(), broken.toString());
        assertTrue(broken.getFirst().contains("not valid, nothing changed"), broken.toString());
        assertTrue(Files.exists(Path.of(a)) && Files.exists(Path.of(dev)), "a broken file detached something");

        if (!fio.waitFor(5, TimeUnit.MINUTES)) {
            fail("fio on a did not finish:\n" + read(fioLog));
        }
        assertEquals(0, fio.exitValue(), read(fioLog));
        System.out.printf("reload: SIGHUP attached c and refused b (mounted); attach --daemon added rt in %d ms "
                + "(CLI call); the control API's reload detached b in %d ms, leaving rt; fio verify on a clean%n",
                runtime.millis(), reloadMillis);
    }

    /** Waits for a line of the daemon's log containing {@code text}; returns it. */
    private String awaitLog(String text, Duration timeout) throws Exception {
        long deadline = System.nanoTime() + timeout.toNanos();
        while (System.nanoTime() < deadline) {
            var line = Files.readString(err).lines().filter(l -> l.contains(text)).findFirst();
            if (line.isPresent()) {
                return line.get();
            }
            Thread.sleep(200);
        }
        fail("the daemon did not log '" + text + "' within " + timeout + ":\n" + diagnose());
        return "";
    }

    private static String read(Path p) {
        try {
            return Files.readString(p);
        } catch (Exception e) {
            return "(" + e + ")";
        }
    }

    @Test
    void attachExitsThreeWhenAnotherProcessDeletesItsDevice() throws Exception {
        ExternalNbdServer server = ExternalNbdServer.nbdkit(dir, List.of(), "memory", "64M");
        servers.add(server);
        Path out = dir.resolve("out");
        err = dir.resolve("err");
        serving = nbdgate(out, err, "attach", "nbd://127.0.0.1:" + server.port() + "/", "--name", "solo");
        String dev = awaitLines(out, 1, serving, err).getFirst();
        ublkDel(id(dev));
        if (!serving.waitFor(60, TimeUnit.SECONDS)) {
            fail("attach still runs 60 s after its device was deleted:\n" + diagnose());
        }
        assertEquals(3, serving.exitValue(), Files.readString(err));
    }

    @Test
    void sigtermWithAFileSystemMountedWaitsForItsUsersThenSyncsAndStops() throws Exception {
        Path image = dir.resolve("export.img");
        run("truncate", "-s", "64M", image.toString());
        ExternalNbdServer server = ExternalNbdServer.nbdkit(dir, List.of(), "file", image.toString());
        servers.add(server);
        String dev = start(List.of(server), "shutdown: {wait-for-users: 5s}\n", "disk").get("disk");
        Path mnt = dir.resolve("mnt");
        run("mkfs.ext4", "-q", "-F", dev);
        Files.createDirectories(mnt);
        run("mount", dev, mnt.toString());
        mounts.add(mnt);
        run("sh", "-c", "head -c 3000000 /dev/urandom > " + mnt + "/kept"); // in the page cache only
        String sum = run("sha256sum", mnt + "/kept").split(" ")[0];

        long t0 = System.nanoTime();
        serving.destroy(); // SIGTERM
        if (!serving.waitFor(60, TimeUnit.SECONDS)) {
            fail("the daemon did not stop within the unit's 60 s:\n" + diagnose());
        }
        long stopped = TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - t0);
        assertEquals(143, serving.exitValue(), Files.readString(err));
        String log = Files.readString(err);
        assertTrue(log.contains("is in use: mounted on " + mnt) && log.contains("at shutdown"), log);
        assertTrue(log.contains("synced and removed anyway"), log);
        assertTrue(stopped >= 5000, "stopped after " + stopped + " ms, before the 5 s wait for users");
        assertFalse(Files.exists(Path.of(dev)), dev + " is still there");
        exec("umount", "-l", mnt.toString());
        mounts.remove(mnt);

        server.close();
        GuestProcesses.Result fsck = exec("e2fsck", "-f", "-y", image.toString());
        assertTrue(fsck.exit() <= 1, fsck.output()); // 1: the journal was replayed
        Path copy = dir.resolve("kept");
        run("debugfs", "-R", "dump /kept " + copy, image.toString());
        assertEquals(sum, run("sha256sum", copy.toString()).split(" ")[0], "the file written before SIGTERM");
        System.out.printf("SIGTERM with ext4 mounted: stopped in %d ms (wait-for-users 5 s)%n", stopped);
    }

    // ---- helpers ----

    private record Timed(GuestProcesses.Result result, long millis) {
    }

    /** nbdkit memory exports, one per name, under one daemon; returns name to /dev/ublkbN. */
    private Map<String, String> daemon(String extraYaml, String... names) throws Exception {
        List<ExternalNbdServer> s = new ArrayList<>();
        for (String n : names) {
            ExternalNbdServer server = ExternalNbdServer.nbdkit(Files.createDirectories(dir.resolve("s-" + n)),
                    List.of(), "memory", "64M");
            servers.add(server);
            s.add(server);
        }
        return start(s, extraYaml, names);
    }

    private Map<String, String> start(List<ExternalNbdServer> s, String extraYaml, String... names) throws Exception {
        Path cfg = writeConfig(s, extraYaml, names);
        Path out = dir.resolve("out");
        err = dir.resolve("err");
        serving = nbdgate(out, err, "daemon", "--config", cfg.toString());
        System.setProperty("nbdgate.runDir", dir.resolve("run").toString()); // ControlClient in this JVM
        Map<String, String> devs = new LinkedHashMap<>();
        for (String line : awaitLines(out, names.length, serving, err)) {
            String[] f = line.split(" ");
            devs.put(f[0], f[1]);
        }
        return devs;
    }

    /** The daemon's file: device {@code names[i]} served by {@code s.get(i)}, one queue each. */
    private Path writeConfig(List<ExternalNbdServer> s, String extraYaml, String... names) throws Exception {
        StringBuilder yaml = new StringBuilder("status: {listen: \"off\"}\n").append(extraYaml).append("devices:\n");
        for (int i = 0; i < names.length; i++) {
            yaml.append("  - {name: ").append(names[i]).append(", uri: \"nbd://127.0.0.1:").append(s.get(i).port())
                    .append("/\", queues: 1}\n");
        }
        Path cfg = dir.resolve("nbdgate.yaml");
        Files.writeString(cfg, yaml);
        return cfg;
    }

    private Timed cli(String... args) throws Exception {
        List<String> cmd = new ArrayList<>(List.of("env", "NBDGATE_RUN_DIR=" + dir.resolve("run"),
                GuestProcesses.ROOT.resolve("bin/nbdgate").toString()));
        cmd.addAll(List.of(args));
        long t0 = System.nanoTime();
        GuestProcesses.Result r = exec(cmd.toArray(String[]::new));
        return new Timed(r, TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - t0));
    }

    /**
     * The daemon's control API as `nbdgate detach` calls it, from this JVM: a guest JVM per CLI call costs up to a
     * minute under TCG with fio running. The CLI's own output is checked once per test with {@link #cli}.
     */
    private Timed api(String name, String mode) throws Exception {
        long t0 = System.nanoTime();
        GuestProcesses.Result r;
        try {
            ControlClient.Device d = ControlClient.detach(name, mode);
            r = new GuestProcesses.Result(0, d.fields().toString());
        } catch (ControlClient.ControlException e) {
            r = new GuestProcesses.Result(1, e.getMessage());
        }
        return new Timed(r, TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - t0));
    }

    /** STOP_DEV and DEL_DEV for device {@code id} from a JVM of its own, as another ublk tool would. */
    private Timed ublkDel(int id) throws Exception {
        String java = ProcessHandle.current().info().command().orElse("java");
        long t0 = System.nanoTime();
        GuestProcesses.Result r = exec("timeout", "120", java, "-cp", System.getProperty("java.class.path"),
                UblkDelTool.class.getName(), Integer.toString(id));
        long millis = TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - t0);
        assertEquals(0, r.exit(), "ublk del of device " + id + " failed or hung:\n" + r.output() + "\n"
                + diagnose());
        Matcher m = Pattern.compile("DEL_DEV (\\d+) ms").matcher(r.output());
        assertTrue(m.find(), r.output());
        assertTrue(Long.parseLong(m.group(1)) < 10_000, "DEL_DEV waited " + m.group(1) + " ms for nbdgate");
        return new Timed(r, millis);
    }

    /** The daemon's log and, while it runs, its threads: what a hang needs explained. */
    private String diagnose() throws Exception {
        String threads = serving.isAlive()
                ? exec("timeout", "60", "jcmd", Long.toString(serving.pid()), "Thread.print").output() : "";
        return Files.readString(err) + "\n" + threads;
    }

    private String diagnoseQuietly() {
        try {
            return diagnose();
        } catch (Exception e) {
            return "(" + e + ")";
        }
    }

    /** fio on {@code dev} for {@code seconds}: 4k random reads and writes at depth 8, as the issue's user ran it. */
    private Process fio(String dev, int seconds) throws Exception {
        Path log = dir.resolve("fio-" + id(dev) + ".log");

        Process p = new ProcessBuilder("fio", "--name=busy", "--filename=" + dev, "--allow_file_create=0",
                "--thread", "--direct=1", "--ioengine=io_uring", "--iodepth=8", "--rw=randrw", "--bs=4k", "--size=32M",
                "--time_based", "--runtime=" + seconds).redirectErrorStream(true).redirectOutput(log.toFile()).start();
        users.add(p);
        fioLogs.put(p, log);
        return p;
    }

    private String output(Process fio) {
        try {
            return Files.readString(fioLogs.get(fio));
        } catch (Exception e) {
            return "(no fio output: " + e + ")";
        }
    }

    private static int id(String dev) {
        Matcher m = DEV.matcher(dev);
        assertTrue(m.matches(), dev);
        return Integer.parseInt(m.group(1));
    }

    private static long awaitGone(String dev, Duration timeout) throws Exception {
        long t0 = System.nanoTime();
        while (Files.exists(Path.of(dev))) {
            if (System.nanoTime() - t0 > timeout.toNanos()) {
                fail(dev + " still there " + timeout + " after its last user closed it");
            }
            Thread.sleep(50);
        }
        return TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - t0);
    }
}
