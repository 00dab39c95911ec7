package io.nbdgate.gateway.device;

import static org.junit.jupiter.api.Assertions.fail;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

/** Runs the real tools (fio, mkfs, mount, bin/nbdgate) from the ublk-layer tests. */
final class GuestProcesses {
    static final Path ROOT = Path.of(System.getProperty("nbdgate.root"));

    private GuestProcesses() {
    }

    record Result(int exit, String output) {
    }

    /** Runs to completion; returns exit code and merged output. */
    static Result exec(String... cmd) throws IOException, InterruptedException {
        return exec(new ProcessBuilder(new ArrayList<>(List.of(cmd))));
    }

    /** Runs {@code pb} (its command, directory and environment) to completion; merged output. */
    static Result exec(ProcessBuilder pb) throws IOException, InterruptedException {
        Process p = pb.redirectErrorStream(true).start();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        if (!p.waitFor(10, TimeUnit.MINUTES)) {
            p.destroyForcibly();
            fail(String.join(" ", pb.command()) + " did not finish");
        }
        return new Result(p.exitValue(), out);
    }

    /** Runs and fails the test unless it exits 0. */
    static String run(String... cmd) throws IOException, InterruptedException {
        Result r = exec(cmd);
        if (r.exit() != 0) {
            fail(String.join(" ", cmd) + " exited " + r.exit() + ":\n" + r.output());
        }
        return r.output();
    }

    private static final java.util.regex.Pattern LOUD =
            java.util.regex.Pattern.compile("^(\\d\\d:\\d\\d:\\d\\d\\.\\d{3} (WARN|ERROR)\\b|WARNING:)");

    /** The lines of nbdgate's output a user would read as a fault: WARN and ERROR log lines, JVM warnings. */
    static List<String> loudLines(String output) {
        return output.lines().filter(l -> LOUD.matcher(l).find()).toList();
    }

    /** Starts bin/nbdgate with stdout to {@code out} and stderr to {@code err}. */
    static Process nbdgate(Path out, Path err, String... args) throws IOException {
        return nbdgate(out, err, java.util.Map.of(), args);
    }

    /** Like {@link #nbdgate(Path, Path, String...)} with more environment (e.g. NOTIFY_SOCKET). */
    static Process nbdgate(Path out, Path err, java.util.Map<String, String> env, String... args) throws IOException {
        List<String> cmd = new ArrayList<>(List.of(ROOT.resolve("bin/nbdgate").toString()));
        cmd.addAll(List.of(args));
        ProcessBuilder pb = new ProcessBuilder(cmd).redirectOutput(out.toFile()).redirectError(err.toFile());
        pb.environment().put("NBDGATE_RUN_DIR", out.getParent().resolve("run").toString());
        pb.environment().putAll(env);
        return pb.start();
    }

    /** Waits until {@code file} has at least {@code lines} lines, or the process died. */
    static List<String> awaitLines(Path file, int lines, Process p, Path err) throws Exception {
        // A JVM starting under TCG on a loaded machine needs tens of seconds before it attaches anything.
        for (int i = 0; i < 1800; i++) {
            List<String> l = Files.exists(file) ? Files.readAllLines(file) : List.of();
            if (l.size() >= lines) {
                return l;
            }
            if (!p.isAlive()) {
                fail("nbdgate exited " + p.exitValue() + ": " + Files.readString(err));
            }
            Thread.sleep(100);
        }
        fail("nbdgate printed nothing within 180 s: " + Files.readString(err));
        return List.of();
    }

    /** Waits until {@code file} (a process's log) contains {@code text}; fails if {@code p} exits first or after 180 s. */
    static void awaitText(Path file, String text, Process p) throws Exception {
        for (int i = 0; i < 1800; i++) {
            String said = Files.exists(file) ? Files.readString(file) : "";
            if (said.contains(text)) {
                return;
            }
            if (!p.isAlive()) {
                fail("nbdgate exited " + p.exitValue() + " before saying '" + text + "': " + said);
            }
            Thread.sleep(100);
        }
        fail("nbdgate did not say '" + text + "' within 180 s: " + Files.readString(file));
    }

    /** mkfs.ext4, mount, write files, unmount, mount again: the checksums must match; then fsck. */
    static void ext4RoundTrip(String dev, Path mnt) throws Exception {
        run("mkfs.ext4", "-q", "-F", dev);
        Files.createDirectories(mnt);
        run("mount", dev, mnt.toString());
        try {
            run("sh", "-c", "for i in 1 2 3 4 5 6 7 8; do head -c $((i * 1048576 + 12345)) /dev/urandom > "
                    + mnt + "/file$i; done; sync");
            String before = run("sh", "-c", "cd " + mnt + " && sha256sum file*");
            run("umount", mnt.toString());
            run("mount", dev, mnt.toString());
            String after = run("sh", "-c", "cd " + mnt + " && sha256sum file*");
            org.junit.jupiter.api.Assertions.assertEquals(before, after, "files changed across unmount and mount");
            org.junit.jupiter.api.Assertions.assertEquals(8, before.lines().count());
        } finally {
            exec("umount", mnt.toString());
        }
        run("e2fsck", "-f", "-n", dev);
    }

    static void fioVerify(String dev, String rw, String bs, String size) throws Exception {
        run("fio", "--name=verify", "--filename=" + dev, "--allow_file_create=0", "--rw=" + rw, "--bs=" + bs,
                "--iodepth=32", "--ioengine=io_uring", "--direct=1", "--size=" + size, "--verify=crc32c",
                "--verify_fatal=1", "--do_verify=1", "--verify_state_save=0", "--output-format=terse");
    }
}
