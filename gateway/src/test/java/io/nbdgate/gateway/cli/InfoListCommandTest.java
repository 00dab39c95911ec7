package io.nbdgate.gateway.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.nbdgate.gateway.testsupport.ExternalNbdServer;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** {@code nbdgate info} and {@code nbdgate list} end to end: real servers, real output, real exit codes. */
class InfoListCommandTest {

    @TempDir
    Path dir;

    record Run(int exit, String out, String err) {}

    static synchronized Run run(String... args) {
        PrintStream oldOut = System.out;
        PrintStream oldErr = System.err;
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        ByteArrayOutputStream err = new ByteArrayOutputStream();
        try {
            System.setOut(new PrintStream(out, true, StandardCharsets.UTF_8));
            System.setErr(new PrintStream(err, true, StandardCharsets.UTF_8));
            int exit = Main.run(args);
            return new Run(exit, out.toString(StandardCharsets.UTF_8), err.toString(StandardCharsets.UTF_8));
        } finally {
            System.setOut(oldOut);
            System.setErr(oldErr);
        }
    }

    @Test
    void infoPrintsSizeFlagsAndBlockSizes() throws Exception {
        try (var server = ExternalNbdServer.nbdkit(dir, List.of("--filter=blocksize-policy"), "memory", "size=3G",
                "blocksize-minimum=512", "blocksize-preferred=4096", "blocksize-maximum=65536")) {
            Run r = run("info", "nbd://127.0.0.1:" + server.port() + "/");
            assertEquals(0, r.exit(), r.err());
            assertTrue(r.out().contains("export-size: 3221225472 (3.0 GiB)"), r.out());
            assertTrue(r.out().contains("block_size_minimum: 512"), r.out());
            assertTrue(r.out().contains("block_size_preferred: 4096"), r.out());
            assertTrue(r.out().contains("block_size_maximum: 65536\n"), r.out());
            assertTrue(r.out().contains("can_flush: true"), r.out());
            assertTrue(r.out().contains("is_read_only: false"), r.out());
            assertTrue(r.out().contains("protocol: newstyle-fixed, structured replies"), r.out());
        }
    }

    @Test
    void infoOnReadOnlyExportSaysSo() throws Exception {
        try (var server = ExternalNbdServer.nbdkit(dir, List.of("--readonly"), "memory", "size=1M")) {
            Run r = run("info", "--no-structured-replies", "nbd://127.0.0.1:" + server.port());
            assertEquals(0, r.exit(), r.err());
            assertTrue(r.out().contains("is_read_only: true"), r.out());
            assertTrue(r.out().contains("protocol: newstyle-fixed, simple replies"), r.out());
        }
    }

    @Test
    void listPrintsExportNames() throws Exception {
        Path file = dir.resolve("disk.img");
        Files.write(file, new byte[1 << 20]);
        try (var server = ExternalNbdServer.nbdServer(dir, file, "disk")) {
            Run r = run("list", "nbd://127.0.0.1:" + server.port());
            assertEquals(0, r.exit(), r.err());
            assertEquals("disk\n", r.out());
        }
    }

    @Test
    void unknownExportIsOneLineAndExitOne() throws Exception {
        Path file = dir.resolve("disk.img");
        Files.write(file, new byte[1 << 20]);
        try (var server = ExternalNbdServer.nbdServer(dir, file, "disk")) {
            Run r = run("info", "nbd://127.0.0.1:" + server.port() + "/nope");
            assertEquals(1, r.exit());
            assertEquals(1, r.err().lines().count(), r.err());
            assertTrue(r.err().startsWith("nbdgate: NBD_OPT_GO: export not found"), r.err());
        }
    }

    @Test
    void unreachableServerIsOneLineAndExitOne() throws Exception {
        int port;
        try (var s = new java.net.ServerSocket(0)) {
            port = s.getLocalPort();
        }
        Run r = run("info", "nbd://127.0.0.1:" + port + "/x");
        assertEquals(1, r.exit());
        assertEquals(1, r.err().lines().count(), r.err());
        assertTrue(r.err().startsWith("nbdgate: cannot connect to nbd://127.0.0.1:" + port + "/x"), r.err());
    }

    @Test
    void badUriIsAUsageErrorWithExitTwo() {
        Run r = run("info", "http://example.com/disk");
        assertEquals(2, r.exit());
        assertEquals(1, r.err().lines().count(), r.err());
        assertTrue(r.err().contains("unknown scheme 'http'"), r.err());
        assertEquals(2, run("list", "http://example.com/").exit()); // without a URI, list shows local devices
    }

    @Test
    void helpDocumentsEveryOption() {
        Run r = run("info", "--help");
        assertEquals(0, r.exit());
        for (String opt : List.of("--no-extended-headers", "--no-structured-replies", "--connect-timeout", "URI")) {
            assertTrue(r.out().contains(opt), opt + " missing from:\n" + r.out());
        }
    }
}
