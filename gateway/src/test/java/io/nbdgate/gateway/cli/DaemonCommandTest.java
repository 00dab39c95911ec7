package io.nbdgate.gateway.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** daemon --config, detach and list, as far as they go without a ublk kernel. */
class DaemonCommandTest {
    @TempDir
    Path dir;

    @BeforeEach
    void isolateRunDir() {
        System.setProperty("nbdgate.runDir", dir.resolve("run").toString());
    }

    @AfterEach
    void restore() {
        System.clearProperty("nbdgate.runDir");
    }

    @Test
    void checkAcceptsTheShippedExample() {
        Path example = Path.of(System.getProperty("nbdgate.root"), "conf", "nbdgate.yaml");
        InfoListCommandTest.Run r = InfoListCommandTest.run("daemon", "--config", example.toString(), "--check");
        assertEquals(0, r.exit(), r.err());
        assertTrue(r.out().contains("is valid: 1 device(s)"), r.out());
    }

    @Test
    void invalidConfigIsOneLineNamingTheKeyExitTwoAndCreatesNothing() throws Exception {
        Path cfg = dir.resolve("bad.yaml");
        Files.writeString(cfg, "devices:\n  - name: a\n    uri: nbd://127.0.0.1/x\n    queus: 2\n");
        // Without --check: the file must still be refused before any device or connection exists.
        InfoListCommandTest.Run r = InfoListCommandTest.run("daemon", "--config", cfg.toString());
        assertEquals(2, r.exit(), r.out() + r.err());
        assertEquals(1, r.err().strip().lines().count(), r.err());
        assertTrue(r.err().contains("devices[0].queus: unknown key"), r.err());
        assertTrue(!Files.exists(dir.resolve("run")) || Files.list(dir.resolve("run")).findAny().isEmpty(),
                "no control socket may appear for a refused config");
    }

    @Test
    void missingConfigFileIsExitTwo() {
        InfoListCommandTest.Run r = InfoListCommandTest.run("daemon", "--config", dir.resolve("nope.yaml").toString());
        assertEquals(2, r.exit());
        assertTrue(r.err().contains("no such file"), r.err());
    }

    @Test
    void detachOfAnUnknownDeviceSaysSoWithExitOne() {
        InfoListCommandTest.Run r = InfoListCommandTest.run("detach", "/dev/ublkb99");
        assertEquals(1, r.exit(), r.out() + r.err());
        assertTrue(r.err().contains("no nbdgate process serves a device named '/dev/ublkb99'"), r.err());
    }

    @Test
    void listWithoutUriShowsOnlyTheHeaderWhenNothingIsServed() {
        InfoListCommandTest.Run r = InfoListCommandTest.run("list");
        assertEquals(0, r.exit(), r.err());
        assertEquals(1, r.out().strip().lines().count(), r.out());
        assertTrue(r.out().startsWith("NAME"), r.out());
    }

    @Test
    void attachRefusesBadFlagsWithTheFlagsName() {
        InfoListCommandTest.Run r = InfoListCommandTest.run("attach", "nbd://127.0.0.1/x", "--depth", "0");
        assertEquals(2, r.exit());
        assertTrue(r.err().startsWith("nbdgate attach: --depth: must be a whole number from 1 to 4096"), r.err());
        r = InfoListCommandTest.run("attach", "http://example/x");
        assertEquals(2, r.exit());
        assertTrue(r.err().contains("unknown scheme 'http'"), r.err());
    }

    @Test
    void nbdtabIsCheckedLikeAConfig() throws Exception {
        Path tab = Files.writeString(dir.resolve("nbdtab"), "nbd0 127.0.0.1 a\nnbd1 /run/s b unix,ro\n");
        InfoListCommandTest.Run r = InfoListCommandTest.run("daemon", "--nbdtab", tab.toString(), "--check");
        assertEquals(0, r.exit(), r.err());
        assertTrue(r.out().contains("nbdtab " + tab + " is valid: 2 device(s)"), r.out());
    }

    @Test
    void aBadNbdtabIsOneLineNamingTheLineExitTwo() throws Exception {
        Path tab = Files.writeString(dir.resolve("nbdtab"), "# mine\nnbd0 host a\nnbd1 host b tls,priority=NORMAL\n");
        InfoListCommandTest.Run r = InfoListCommandTest.run("daemon", "--nbdtab", tab.toString());
        assertEquals(2, r.exit(), r.out() + r.err());
        assertEquals("nbdgate: nbdtab " + tab + ": line 3: option 'priority': a GnuTLS priority string; nbdgate"
                + " offers TLS 1.3 and 1.2 with AES-GCM and ChaCha20-Poly1305, nothing else", r.err().strip());
    }

    @Test
    void configAndNbdtabExcludeEachOther() {
        InfoListCommandTest.Run r = InfoListCommandTest.run("daemon", "--config", "a.yaml", "--nbdtab", "b");
        assertEquals(2, r.exit());
        assertTrue(r.err().contains("mutually exclusive"), r.err());
        r = InfoListCommandTest.run("daemon");
        assertEquals(2, r.exit());
        assertTrue(r.err().contains("Missing required argument"), r.err());
    }
}
