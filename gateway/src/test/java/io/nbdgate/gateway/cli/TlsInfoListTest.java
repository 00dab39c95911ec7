package io.nbdgate.gateway.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.nbdgate.gateway.cli.InfoListCommandTest.Run;
import io.nbdgate.gateway.nbd.server.EmbeddedNbdServer;
import io.nbdgate.gateway.nbd.server.Export;
import io.nbdgate.gateway.nbd.server.NbdServerConfig;
import io.nbdgate.gateway.nbd.server.ServerTls;
import io.nbdgate.gateway.testsupport.ExternalNbdServer;
import io.nbdgate.gateway.tls.ServerCredentials;
import io.nbdgate.gateway.tls.TlsServerEngine;
import io.nbdgate.protocol.server.ServerHandshake;
import io.nbdgate.gateway.testsupport.TestPki;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HexFormat;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code nbdgate info} and {@code list} over TLS against real TLS servers (nbdkit and nbd-server with GnuTLS,
 * qemu-nbd), with certificates this test makes: X.509 and PSK succeed, and every refusal is one line that names
 * its cause, with exit code 1 (2 for a contradiction on the command line).
 */
class TlsInfoListTest {

    @TempDir
    Path dir;

    TestPki pki;
    Path serverDir;
    Path clientDir;

    @BeforeEach
    void certificates() throws Exception {
        pki = TestPki.ca("nbdgate test CA");
        serverDir = pki.writeServerDir(dir.resolve("server"), pki.server("localhost", "localhost", "127.0.0.1"));
        clientDir = pki.writeClientDir(dir.resolve("client"), null);
    }

    private ExternalNbdServer nbdkitX509(String... more) throws Exception {
        List<String> options = new java.util.ArrayList<>(List.of("--tls=require", "--tls-certificates=" + serverDir));
        options.addAll(List.of(more));
        return ExternalNbdServer.nbdkit(dir, options, "memory", "size=64M");
    }

    private Path pskFile(String identity, byte[] key) throws Exception {
        Path f = Files.createTempFile(dir, "keys", ".psk");
        Files.writeString(f, identity + ":" + HexFormat.of().formatHex(key) + "\n");
        return f;
    }

    private static byte[] key(long seed) {
        byte[] k = new byte[32];
        new Random(seed).nextBytes(k);
        return k;
    }

    @Test
    void nbdkitWithX509() throws Exception {
        try (var server = nbdkitX509()) {
            Run r = InfoListCommandTest.run("info", "nbds://localhost:" + server.port() + "/?tls-certificates="
                    + clientDir);
            assertEquals(0, r.exit(), r.err());
            assertTrue(r.out().contains("export-size: 67108864"), r.out());
            assertTrue(r.out().contains("tls: TLS 1.3 TLS_"), r.out());
            assertTrue(r.out().contains(" CN=localhost"), r.out());
            Run l = InfoListCommandTest.run("list", "--tls-certificates", clientDir.toString(),
                    "nbds://127.0.0.1:" + server.port());
            assertEquals(0, l.exit(), l.err());
        }
    }

    @Test
    void nbdkitWithPsk() throws Exception {
        Path keys = pskFile("alice", key(1));
        try (var server = ExternalNbdServer.nbdkit(dir, List.of("--tls=require", "--tls-psk=" + keys), "memory",
                "size=64M")) {
            Run r = InfoListCommandTest.run("info", "nbds://alice@127.0.0.1:" + server.port() + "/?tls-psk-file="
                    + keys);
            assertEquals(0, r.exit(), r.err());
            assertTrue(r.out().contains("psk:alice"), r.out());

            Run wrongKey = InfoListCommandTest.run("info", "--tls-psk-file", pskFile("alice", key(2)).toString(),
                    "nbds://alice@127.0.0.1:" + server.port() + "/");
            assertEquals(1, wrongKey.exit(), wrongKey.err());
            assertOneLine(wrongKey.err(), "identity 'alice'");

            Run noSuchIdentity = InfoListCommandTest.run("info", "--tls-psk-file", keys.toString(),
                    "nbds://bob@127.0.0.1:" + server.port() + "/");
            assertEquals(1, noSuchIdentity.exit(), noSuchIdentity.err());
            assertOneLine(noSuchIdentity.err(), "has no key for identity 'bob'");
        }
    }

    @Test
    void clientCertificateWhenTheServerAsksForOne() throws Exception {
        try (var server = nbdkitX509("--tls-verify-peer")) {
            Run without = InfoListCommandTest.run("info", "--tls-certificates", clientDir.toString(),
                    "nbds://localhost:" + server.port() + "/");
            assertEquals(1, without.exit(), without.err());
            assertOneLine(without.err(), "client certificate");

            Path withCert = pki.writeClientDir(dir.resolve("with-cert"), pki.client("nbdgate client"));
            Run with = InfoListCommandTest.run("info", "--tls-certificates", withCert.toString(),
                    "nbds://localhost:" + server.port() + "/");
            assertEquals(0, with.exit(), with.err());
        }
    }

    @Test
    void qemuNbdAndNbdServer() throws Exception {
        Path image = dir.resolve("disk.img");
        Files.write(image, new byte[1 << 20]);
        try (var qemu = ExternalNbdServer.qemuNbdTls(dir, image, "disk", serverDir)) {
            Run r = InfoListCommandTest.run("info", "--tls-certificates", clientDir.toString(),
                    "nbds://localhost:" + qemu.port() + "/disk");
            assertEquals(0, r.exit(), r.err());
            assertTrue(r.out().contains("export-size: 1048576"), r.out());
            assertTrue(r.out().contains("tls: TLS 1.3"), r.out());
        }
        // nbd-server 3.24 verifies a client certificate on every TLS connection.
        Path withCert = pki.writeClientDir(dir.resolve("with-cert"), pki.client("nbdgate client"));
        try (var nbdServer = ExternalNbdServer.nbdServerTls(dir, image, "disk", serverDir)) {
            Run r = InfoListCommandTest.run("info", "--tls-certificates", withCert.toString(),
                    "nbds://localhost:" + nbdServer.port() + "/disk");
            assertEquals(0, r.exit(), r.err());
            assertTrue(r.out().contains("tls: TLS 1.2"), r.out() + r.err());
        }
    }

    @Test
    void eachRefusalNamesItsCause() throws Exception {
        Path otherCa = TestPki.ca("some other CA").writeClientDir(dir.resolve("other"), null);
        Path expired = pki.writeServerDir(dir.resolve("expired"), pki.expiredServer("localhost", "localhost"));
        try (var server = nbdkitX509();
             var expiredServer = ExternalNbdServer.nbdkit(dir, List.of("--tls=require",
                     "--tls-certificates=" + expired), "memory", "size=1M");
             var plain = ExternalNbdServer.nbdkit(dir, List.of(), "memory", "size=1M")) {
            String url = "nbds://localhost:" + server.port() + "/";
            assertRefused(List.of("info", "--tls-certificates", otherCa.toString(), url),
                    "not signed by a CA in " + otherCa.resolve("ca-cert.pem"));
            assertRefused(List.of("info", "--tls-certificates", clientDir.toString(), "--tls-hostname",
                    "disk.example.com", url), "is for localhost, 127.0.0.1, not disk.example.com");
            assertRefused(List.of("info", "--tls-certificates", clientDir.toString(),
                    "nbds://localhost:" + expiredServer.port() + "/"), "expired on");
            assertRefused(List.of("info", "--tls-certificates", clientDir.toString(),
                    "nbds://localhost:" + plain.port() + "/"), "the server does not offer TLS");
            assertRefused(List.of("info", "nbd://localhost:" + server.port() + "/"),
                    "the server requires TLS (use an nbds:// URI)");
            // Without checking, the same wrong-CA server is reachable: the check, not the connection, refused.
            Run unchecked = InfoListCommandTest.run("info", "--tls-certificates", otherCa.toString(),
                    "--no-tls-verify-peer", url);
            assertEquals(0, unchecked.exit(), unchecked.err());
        }
    }

    @Test
    void theEmbeddedServerSpeaksTlsWithCertificatesAndWithPsk() throws Exception {
        Path keys = pskFile("alice", key(3));
        try (var x509 = EmbeddedNbdServer.start(NbdServerConfig.tcp("127.0.0.1", 0,
                List.of(Export.memory("disk", 8L << 20, false))).withTls(
                        new ServerTls(ServerHandshake.Tls.REQUIRE, ServerCredentials.certificates(serverDir))));
             var psk = EmbeddedNbdServer.start(NbdServerConfig.tcp("127.0.0.1", 0,
                     List.of(Export.memory("disk", 8L << 20, false))).withTls(
                             new ServerTls(ServerHandshake.Tls.REQUIRE, ServerCredentials.psk(keys), 2 << 20)))) {
            assertTrue(x509.uri("disk").startsWith("nbds://"), x509.uri("disk"));
            Run r = InfoListCommandTest.run("info", "--tls-certificates", clientDir.toString(),
                    "nbds://localhost:" + x509.port() + "/disk");
            assertEquals(0, r.exit(), r.err());
            assertTrue(r.out().contains("tls: TLS 1.3") && r.out().contains("CN=localhost"), r.out());
            // libnbd (GnuTLS) as the client: the server is a TLS peer of the reference tools, not only of ours.
            String nbdinfo = ExternalNbdServer.requireBinary("nbdinfo", "libnbd-bin");
            Process p = new ProcessBuilder(nbdinfo, "--size", "nbds://localhost:" + x509.port() + "/disk?tls-certificates="
                    + clientDir).redirectErrorStream(true).start();
            String out = new String(p.getInputStream().readAllBytes()).strip();
            assertEquals(0, p.waitFor(), out);
            assertEquals("8388608", out);

            // The server runs in this JVM: its own log lines share stderr, so only ours are counted.
            assertRefused(List.of("info", "nbd://localhost:" + x509.port() + "/disk"), "the server requires TLS");

            Run withKey = InfoListCommandTest.run("info", "--tls-psk-file", keys.toString(),
                    "nbds://alice@127.0.0.1:" + psk.port() + "/disk");
            assertEquals(0, withKey.exit(), withKey.err());
            assertTrue(withKey.out().contains("psk:alice"), withKey.out());
            // GnuTLS prefers AES-256-GCM-SHA384, whose hash is not the PSK's: the server must not pick it.
            Process gnutlsPsk = new ProcessBuilder(nbdinfo, "--size", "nbds://alice@127.0.0.1:" + psk.port()
                    + "/disk?tls-psk-file=" + keys).redirectErrorStream(true).start();
            String pskOut = new String(gnutlsPsk.getInputStream().readAllBytes()).strip();
            assertEquals(0, gnutlsPsk.waitFor(), pskOut);
            assertEquals("8388608", pskOut);
            // GnuTLS follows our KeyUpdates (one per 2 MiB sent here; it refuses more than 8 a second) through a
            // copy of the export's data.
            String pskUri = "nbds://alice@127.0.0.1:" + psk.port() + "/disk?tls-psk-file=" + keys;
            byte[] data = new byte[8 << 20];
            new Random(9).nextBytes(data);
            Path in = Files.write(dir.resolve("in.img"), data);
            Path copied = dir.resolve("out.img");
            String nbdcopy = ExternalNbdServer.requireBinary("nbdcopy", "libnbd-bin");
            long keyUpdates = TlsServerEngine.keyUpdatesSent();
            for (List<String> args : List.of(List.of(nbdcopy, in.toString(), pskUri),
                    List.of(nbdcopy, pskUri, copied.toString()))) {
                Process copy = new ProcessBuilder(args).redirectErrorStream(true).start();
                String copyOut = new String(copy.getInputStream().readAllBytes()).strip();
                assertEquals(0, copy.waitFor(), args + ": " + copyOut);
            }
            assertTrue(java.util.Arrays.equals(data, Files.readAllBytes(copied)), "the data came back changed");
            assertTrue(TlsServerEngine.keyUpdatesSent() - keyUpdates >= 3, "KeyUpdates during 8 MiB: "
                    + (TlsServerEngine.keyUpdatesSent() - keyUpdates));
            assertRefused(List.of("info", "--tls-psk-file", pskFile("alice", key(4)).toString(),
                    "nbds://alice@127.0.0.1:" + psk.port() + "/disk"), "identity 'alice'");
        }
    }

    @Test
    void badTlsArgumentsFailBeforeConnecting() {
        // Port 9 (discard) on loopback has no NBD server: these must fail on their arguments, not on a connection.
        Run missingDir = InfoListCommandTest.run("info", "--tls-certificates", "/nonexistent/dir",
                "nbds://localhost:9/");
        assertEquals(1, missingDir.exit(), missingDir.err());
        assertOneLine(missingDir.err(), "TLS certificates directory /nonexistent/dir does not exist");

        Run tlsOnPlain = InfoListCommandTest.run("info", "--tls-certificates", "/tmp", "nbd://localhost:9/");
        assertEquals(2, tlsOnPlain.exit(), tlsOnPlain.err());
        assertOneLine(tlsOnPlain.err(), "does not ask for TLS; use nbds://");

        Run twice = InfoListCommandTest.run("info", "--tls-hostname", "a.example", "nbds://localhost:9/?tls-hostname=b.example");
        assertEquals(2, twice.exit(), twice.err());
        assertOneLine(twice.err(), "tls-hostname is given twice");

        Run noName = InfoListCommandTest.run("info", "nbds+unix:///?socket=/nonexistent.sock");
        assertEquals(1, noName.exit(), noName.err());
        assertOneLine(noName.err(), "no host name to check the server's certificate against");
    }

    private static void assertRefused(List<String> args, String expected) {
        Run r = InfoListCommandTest.run(args.toArray(String[]::new));
        assertEquals(1, r.exit(), String.join(" ", args) + ": " + r.err());
        assertOneLine(r.err(), expected);
    }

    private static void assertOneLine(String err, String expected) {
        assertTrue(err.contains(expected), "expected '" + expected + "' in: " + err);
        // An embedded server in this JVM logs to the same stderr ("HH:MM:SS.mmm LEVEL Class: ..."): not ours.
        assertEquals(1, err.strip().lines().filter(l -> !l.matches("\\d\\d:\\d\\d:\\d\\d\\.\\d+ .*")).count(),
                "one line: " + err);
    }
}
