package io.nbdgate.gateway.device;

import static io.nbdgate.gateway.device.GuestProcesses.awaitLines;
import static io.nbdgate.gateway.device.GuestProcesses.awaitText;
import static io.nbdgate.gateway.device.GuestProcesses.exec;
import static io.nbdgate.gateway.device.GuestProcesses.nbdgate;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.nbdgate.gateway.testsupport.ExternalNbdServer;
import io.nbdgate.ublk.DeviceNodes;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** bin/nbdgate as a user runs it: attach, list, detach, daemon, on a real ublk kernel. */
@Tag("ublk")
class CliGuestTest {
    @TempDir
    Path dir;

    private Process process;

    @AfterEach
    void cleanUp() throws Exception {
        if (process != null && process.isAlive()) {
            process.destroy();
            process.waitFor(30, TimeUnit.SECONDS);
        }
        assertTrue(DeviceNodes.presentDevices().isEmpty(), "ublk devices left behind: " + DeviceNodes.presentDevices());
    }

    private GuestProcesses.Result nbdgateRun(String... args) throws Exception {
        String[] cmd = new String[args.length + 3];
        cmd[0] = "env";
        cmd[1] = "NBDGATE_RUN_DIR=" + dir.resolve("run");
        cmd[2] = GuestProcesses.ROOT.resolve("bin/nbdgate").toString();
        System.arraycopy(args, 0, cmd, 3, args.length);
        return exec(cmd);
    }

    @Test
    void attachListDetach() throws Exception {
        try (ExternalNbdServer server = ExternalNbdServer.nbdkit(dir, List.of(), "memory", "64M")) {
            Path out = dir.resolve("out");
            Path err = dir.resolve("err");
            process = nbdgate(out, err, "attach", "nbd://127.0.0.1:" + server.port() + "/disk", "--name", "disk",
                    "--queues", "2");
            String dev = awaitLines(out, 1, process, err).getFirst();
            assertTrue(dev.matches("/dev/ublkb\\d+"), dev);
            assertTrue(Files.exists(Path.of(dev)));

            GuestProcesses.Result list = nbdgateRun("list");
            assertEquals(0, list.exit(), list.output());
            assertTrue(list.output().contains("disk") && list.output().contains(dev), list.output());
            assertTrue(list.output().contains("zero-copy"), list.output());
            List<String> undocumented = ServingThreads.undocumented(process.pid(),
                    GuestProcesses.ROOT.resolve("docs/ARCHITECTURE.md"));
            assertEquals(List.of(), undocumented, "threads of attach that docs/ARCHITECTURE.md does not list; all: "
                    + ServingThreads.of(process.pid()));

            GuestProcesses.Result detach = nbdgateRun("detach", "disk");
            assertEquals(0, detach.exit(), detach.output());
            assertTrue(detach.output().contains("detached " + dev), detach.output());
            if (!process.waitFor(30, TimeUnit.SECONDS)) {
                org.junit.jupiter.api.Assertions.fail("attach must exit once its device is detached:\n"
                        + Files.readString(err) + "\n" + exec("timeout", "60", "jcmd", Long.toString(process.pid()),
                        "Thread.print").output());
            }
            assertEquals(0, process.exitValue(), Files.readString(err));
            assertTrue(!Files.exists(Path.of(dev)), dev + " still exists");
            assertQuiet(err);
        }
    }

    @Test
    void daemonAttachesEveryDeviceAndDetachesThemOnSigterm() throws Exception {
        try (ExternalNbdServer a = ExternalNbdServer.nbdkit(Files.createDirectories(dir.resolve("a")), List.of(),
                "memory", "32M");
             ExternalNbdServer b = ExternalNbdServer.nbdkitUnix(Files.createDirectories(dir.resolve("b")), List.of(),
                     "memory", "32M")) {
            Path cfg = dir.resolve("nbdgate.yaml");
            Files.writeString(cfg, """
                    status: {listen: "off"}
                    devices:
                      - {name: tcp-disk, uri: "nbd://127.0.0.1:%d/a", queues: 1}
                      - {name: unix-disk, uri: "nbd+unix:///b?socket=%s", read-only: true}
                    """.formatted(a.port(), b.uri().socketPath()));
            Path out = dir.resolve("out");
            Path err = dir.resolve("err");
            process = nbdgate(out, err, "daemon", "--config", cfg.toString());
            List<String> lines = awaitLines(out, 2, process, err);
            assertTrue(lines.get(0).startsWith("tcp-disk /dev/ublkb"), lines.toString());
            assertTrue(lines.get(1).startsWith("unix-disk /dev/ublkb"), lines.toString());
            String ro = lines.get(1).split(" ")[1];
            assertEquals("1", exec("blockdev", "--getro", ro).output().strip(), "read-only: true is honoured");

            String rw = lines.get(0).split(" ")[1];
            process.destroy(); // SIGTERM
            assertTrue(process.waitFor(60, TimeUnit.SECONDS), "daemon must exit on SIGTERM");
            assertTrue(process.exitValue() == 143 || process.exitValue() == 0, "exit " + process.exitValue());
            assertTrue(!Files.exists(Path.of(rw)) && !Files.exists(Path.of(ro)),
                    "SIGTERM must delete every device: " + Files.readString(err));
            assertQuiet(err);
        }
    }

    @Test
    void aDeviceWhoseServerStartsAfterTheDaemonIsAttachedWithoutAReload() throws Exception {
        Path lateDir = Files.createDirectories(dir.resolve("late"));
        Path socket = lateDir.resolve("nbdkit.sock"); // where nbdkitUnix will listen, once started
        try (ExternalNbdServer up = ExternalNbdServer.nbdkit(Files.createDirectories(dir.resolve("up")), List.of(),
                "memory", "32M")) {
            Path cfg = dir.resolve("nbdgate.yaml");
            Files.writeString(cfg, """
                    status: {listen: "off"}
                    devices:
                      - {name: up, uri: "nbd://127.0.0.1:%d/", queues: 1}
                      - {name: late, uri: "nbd+unix:///?socket=%s", queues: 1}
                    """.formatted(up.port(), socket));
            Path out = dir.resolve("out");
            Path err = dir.resolve("err");
            process = nbdgate(out, err, "daemon", "--config", cfg.toString());
            assertTrue(awaitLines(out, 1, process, err).getFirst().startsWith("up /dev/ublkb"));
            awaitText(err, "late: not attached", process);
            try (ExternalNbdServer late = ExternalNbdServer.nbdkitUnix(lateDir, List.of(), "memory", "32M")) {
                List<String> lines = awaitLines(out, 2, process, err); // the first retry comes 10 s after the failure
                assertTrue(lines.get(1).startsWith("late /dev/ublkb"), lines.toString());
                String dev = lines.get(1).split(" ")[1];
                assertTrue(Files.exists(Path.of(dev)), dev);
                assertTrue(Files.readString(err).contains("late: attached as " + dev + " on attempt "),
                        Files.readString(err));
                process.destroy(); // SIGTERM detaches the retried device like any other
                assertTrue(process.waitFor(60, TimeUnit.SECONDS), "daemon must exit on SIGTERM");
                assertTrue(!Files.exists(Path.of(dev)), "SIGTERM must delete the retried device too");
            }
        }
    }

    /** A healthy run says nothing a user should act on. */
    private static void assertQuiet(Path err) throws Exception {
        String said = Files.readString(err);
        assertEquals(List.of(), GuestProcesses.loudLines(said), "a healthy run logged these; all it said:\n" + said);
    }
}
