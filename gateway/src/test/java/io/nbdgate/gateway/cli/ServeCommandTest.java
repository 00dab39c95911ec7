package io.nbdgate.gateway.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** {@code nbdgate serve} as a real process: where it listens, real clients, SIGTERM, bad input. */
class ServeCommandTest {
    @TempDir Path dir;

    static Process nbdgate(Path dir, String... args) throws Exception {
        List<String> cmd = new ArrayList<>(List.of(Path.of(System.getProperty("java.home"), "bin", "java").toString(),
                "--enable-native-access=ALL-UNNAMED", "-cp", System.getProperty("java.class.path"),
                "io.nbdgate.gateway.cli.Main"));
        cmd.addAll(List.of(args));
        return new ProcessBuilder(cmd).directory(dir.toFile()).redirectError(dir.resolve("stderr.txt").toFile()).start();
    }

    static String tool(String tool, String pkg, String... args) throws Exception {
        Path binary = Path.of("/usr/bin", tool);
        if (!Files.isExecutable(binary)) fail(tool + " is missing: install the Debian package " + pkg);
        List<String> cmd = new ArrayList<>(List.of(binary.toString()));
        cmd.addAll(List.of(args));
        Process p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertTrue(p.waitFor(60, TimeUnit.SECONDS));
        assertEquals(0, p.exitValue(), tool + " failed: " + out);
        return out;
    }

    @Test
    void serve_listensServesRealClientsAndStopsCleanlyOnSigterm() throws Exception {
        Path image = dir.resolve("b.img");
        Process p = nbdgate(dir, "serve", "--export", "a=memory:16M", "--export", "b=file:" + image + ":8M", "--port", "0");
        try {
            BufferedReader stdout = new BufferedReader(new InputStreamReader(p.getInputStream(), StandardCharsets.UTF_8));
            String line = stdout.readLine();
            assertTrue(line != null && line.startsWith("nbdgate: serving nbd://127.0.0.1:"), "first line: " + line
                    + "\nstderr: " + Files.readString(dir.resolve("stderr.txt")));
            Matcher m = Pattern.compile("nbd://127\\.0\\.0\\.1:(\\d+)/b").matcher(line);
            assertTrue(m.find(), line);
            String uri = "nbd://127.0.0.1:" + m.group(1);
            String list = tool("nbdinfo", "libnbd-bin", "--list", uri);
            assertTrue(list.contains("export=\"a\"") && list.contains("export=\"b\""), list);
            tool("qemu-io", "qemu-utils", "-f", "raw", uri + "/b", "-c", "write -P 0x77 0 64k");
        } finally {
            p.destroy(); // SIGTERM
        }
        assertTrue(p.waitFor(30, TimeUnit.SECONDS), "serve stops within 30 s of SIGTERM");
        String stderr = Files.readString(dir.resolve("stderr.txt"));
        assertFalse(stderr.contains("Exception"), stderr);
        assertEquals(8 << 20, Files.size(image));
        assertEquals(0x77, Files.readAllBytes(image)[65535]);
    }

    @Test
    void serve_malformedExport_oneLineExit2() throws Exception {
        assertUsageError("unknown backend in 'tape:1G'", "serve", "--export", "disk=tape:1G");
    }

    @Test
    void serve_badSize_oneLineExit2() throws Exception {
        assertUsageError("size '12Q'", "serve", "--export", "disk=memory:12Q");
    }

    @Test
    void serve_missingFileWithoutSize_oneLineExit2() throws Exception {
        assertUsageError("give a size", "serve", "--export", "disk=file:" + dir.resolve("none.img"));
    }

    @Test
    void serve_duplicateExportNames_oneLineExit2() throws Exception {
        assertUsageError("unique", "serve", "--export", "d=memory:1M", "--export", "d=memory:2M");
    }

    @Test
    void serve_noExport_oneLineExit2() throws Exception {
        assertUsageError("--export", "serve");
    }

    private void assertUsageError(String expected, String... args) throws Exception {
        Process p = nbdgate(dir, args);
        assertTrue(p.waitFor(30, TimeUnit.SECONDS));
        List<String> lines = Files.readAllLines(dir.resolve("stderr.txt")).stream().filter(l -> !l.isBlank()).toList();
        assertEquals(2, p.exitValue(), String.join("\n", lines));
        assertEquals(1, lines.size(), "one line on stderr: " + lines);
        assertTrue(lines.getFirst().contains(expected), lines.getFirst());
    }
}
