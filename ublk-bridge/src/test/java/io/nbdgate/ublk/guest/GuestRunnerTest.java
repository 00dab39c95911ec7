package io.nbdgate.ublk.guest;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The contract of scripts/guest-run, on which every ublk test rests: the command runs on a real ublk
 * kernel, its exit code and output come back, the host root is read-only and the results share writable,
 * and a timeout kills the guest and leaves no process behind.
 */
class GuestRunnerTest {
    private static final Path ROOT = Path.of(System.getProperty("nbdgate.root"));

    @TempDir
    Path results;

    private record Run(int exitCode, String output) {
    }

    private Run guestRun(String... args) throws IOException, InterruptedException {
        List<String> cmd = new ArrayList<>(List.of(ROOT.resolve("scripts/guest-run").toString(), "--mem", "1G",
                "--results", results.toString()));
        cmd.addAll(List.of(args));
        Process p = new ProcessBuilder(cmd).directory(ROOT.toFile()).redirectErrorStream(true).start();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertTrue(p.waitFor(5, TimeUnit.MINUTES), "guest-run did not end");
        return new Run(p.exitValue(), out);
    }

    @Test
    void commandRunsOnAUblkKernelWithItsExitCodeAndOutput() throws Exception {
        // Boots take seconds; a guest that hangs before running the command fails in minutes, not half an hour.
        Run r = guestRun("--timeout", "300", "--", "sh", "-c", String.join("; ",
                "uname -r",
                "test -c /dev/ublk-control && echo ublk-control-present",
                "touch /etc/nbdgate-guest-write 2>/dev/null || echo root-read-only",
                "echo from-guest > \"$NBDGATE_RESULTS/out.txt\"",
                "ip -o addr show lo | grep -q 127.0.0.1 && echo loopback-up",
                "exit 7"));
        assertEquals(7, r.exitCode(), r.output());
        assertTrue(r.output().contains("7.2."), r.output());
        assertTrue(r.output().contains("ublk-control-present"), r.output());
        assertTrue(r.output().contains("root-read-only"), r.output());
        assertTrue(r.output().contains("loopback-up"), r.output());
        assertEquals("from-guest\n", Files.readString(results.resolve("out.txt")));
    }

    @Test
    void timeoutKillsTheGuestAndLeavesNothingRunning() throws Exception {
        Run r = guestRun("--timeout", "6", "--", "sleep", "600");
        assertEquals(124, r.exitCode(), r.output());
        assertTrue(r.output().contains("timed out"), r.output());
        Process pg = new ProcessBuilder("pgrep", "-f", results.toString()).start();
        String left = new String(pg.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        pg.waitFor();
        assertEquals("", left.strip(), "processes left behind: " + left);
    }

    @Test
    void badOptionsFailWithOneLine() throws Exception {
        Run r = guestRun("--timeout", "soon", "--", "true");
        assertEquals(2, r.exitCode(), r.output());
        assertEquals(1, r.output().strip().lines().count(), r.output());
    }
}
