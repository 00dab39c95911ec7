package io.nbdgate.gateway.nbd.server;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.fail;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.TimeUnit;

/**
 * Runs a real NBD client installed on the host. A missing binary fails the test with the Debian
 * package to install: these tests prove interoperability and must not pass by being skipped.
 */
final class HostTool {
    private HostTool() {}

    record Result(int exit, String out) {}

    static Result run(String tool, String package_, String... args) throws IOException, InterruptedException {
        Path binary = tool.startsWith("/") ? Path.of(tool) : Path.of("/usr/bin", tool);
        if (!Files.isExecutable(binary)) fail(tool + " is missing: install the Debian package " + package_ + " (apt-get install " + package_ + ")");
        List<String> cmd = new java.util.ArrayList<>();
        cmd.add(binary.toString());
        cmd.addAll(List.of(args));
        Process p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
        p.getOutputStream().close();
        byte[] out = p.getInputStream().readAllBytes();
        if (!p.waitFor(120, TimeUnit.SECONDS)) {
            p.destroyForcibly();
            fail(String.join(" ", cmd) + " did not finish in 120 s");
        }
        return new Result(p.exitValue(), new String(out, StandardCharsets.UTF_8));
    }

    /** Runs and requires exit 0; returns the combined output. */
    static String ok(String tool, String package_, String... args) throws IOException, InterruptedException {
        Result r = run(tool, package_, args);
        assertEquals(0, r.exit(), () -> tool + " " + String.join(" ", args) + " failed:\n" + r.out());
        return r.out();
    }

    static String nbdinfo(String... args) throws IOException, InterruptedException {
        return ok("nbdinfo", "libnbd-bin", args);
    }

    static String nbdcopy(String... args) throws IOException, InterruptedException {
        return ok("nbdcopy", "libnbd-bin", args);
    }

    static Result qemuIo(String... args) throws IOException, InterruptedException {
        return run("qemu-io", "qemu-utils", args);
    }
}
