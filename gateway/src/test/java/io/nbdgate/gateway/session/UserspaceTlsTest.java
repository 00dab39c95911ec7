package io.nbdgate.gateway.session;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.nbdgate.gateway.config.DeviceConfig;
import io.nbdgate.gateway.link.LinkOptions;
import io.nbdgate.gateway.nbd.server.EmbeddedNbdServer;
import io.nbdgate.gateway.nbd.server.Export;
import io.nbdgate.gateway.nbd.server.NbdServerConfig;
import io.nbdgate.gateway.nbd.server.ServerTls;
import io.nbdgate.gateway.testsupport.ExternalNbdServer;
import io.nbdgate.gateway.testsupport.SessionHarness;
import io.nbdgate.gateway.testsupport.TestPki;
import io.nbdgate.gateway.tls.ClientCredentials;
import io.nbdgate.gateway.tls.ServerCredentials;
import io.nbdgate.gateway.tls.TlsRelay;
import io.nbdgate.gateway.tls.TlsServerEngine;
import io.nbdgate.gateway.tls.TlsSettings;
import io.nbdgate.protocol.Command;
import io.nbdgate.protocol.client.HandshakeConfig;
import io.nbdgate.protocol.server.ServerHandshake;
import java.io.IOException;
import java.io.RandomAccessFile;
import java.lang.foreign.MemorySegment;
import java.net.InetSocketAddress;
import java.net.SocketAddress;
import java.net.UnixDomainSocketAddress;
import java.lang.foreign.ValueLayout;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import jdk.jfr.Recording;
import jdk.jfr.consumer.RecordingFile;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The data path over TLS where the kernel cannot take the record layer: this host has no tls module, so every
 * link here falls back to a {@link TlsRelay} (the guest, which has kernel TLS, proves that mode with
 * -Dnbdgate.kernelTls=false). Real nbdkit servers with GnuTLS, PSK and X.509.
 */
class UserspaceTlsTest {
    @TempDir
    Path dir;

    private SessionHarness h;
    private ExternalNbdServer server;

    @BeforeEach
    void setUp() throws Exception {
        h = new SessionHarness();
    }

    @AfterEach
    void tearDown() throws Exception {
        h.close();
        assertEquals(0, h.strayCompletions.get(), "a request completed twice");
        // The relays of every link, the restarted server's included, ended with their links.
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
        while (relayThreads() > 0 && System.nanoTime() < deadline) {
            Thread.sleep(50);
        }
        assertEquals(0, relayThreads(), "relay threads outlived their links");
    }

    private static long relayThreads() {
        return Thread.getAllStackTraces().keySet().stream()
                .filter(t -> t.getName().startsWith("nbdgate-tls-")).count();
    }

    private LinkOptions withTls(ClientCredentials credentials) {
        LinkOptions plain = h.linkOptions(Duration.ofSeconds(10), Duration.ofSeconds(10),
                DeviceConfig.DEFAULT_STAGE_READS_MAX);
        return new LinkOptions(plain.connectTimeout(), plain.ioTimeout(), plain.zeroFd(), plain.sendZcMin(),
                plain.stageMax(), plain.keepalive(), credentials);
    }

    private QueueSession open(ClientCredentials credentials, int depth) throws Exception {
        return open(server.socketAddress(), credentials, depth);
    }

    private QueueSession open(SocketAddress at, ClientCredentials credentials, int depth) throws Exception {
        return h.opening(at, new HandshakeConfig("", HandshakeConfig.Goal.GO, true, true, true), depth,
                withTls(credentials), ReconnectPolicy.of(Duration.ofMinutes(2))).get(60, TimeUnit.SECONDS);
    }

    /** A PSK file with one identity and a fixed key. */
    private Path pskFile(String identity) throws IOException {
        return Files.writeString(dir.resolve(identity + ".psk"), identity + ":" + "3c".repeat(32) + "\n");
    }

    @Test
    void pskDataRoundTripsThroughTheRelayAndSurvivesAServerRestart() throws Exception {
        Path keys = pskFile("alice");
        Path image = dir.resolve("disk.img");
        try (RandomAccessFile f = new RandomAccessFile(image.toFile(), "rw")) {
            f.setLength(64L << 20);
        }
        server = h.serving(ExternalNbdServer.nbdkit(dir, List.of("--tls=require", "--tls-psk=" + keys), "file",
                image.toString()));
        TlsSettings settings = new TlsSettings(null, null, null, null, keys, "alice");
        // Which ciphers the JCA hands out while the link comes up and moves data.
        Path recorded = dir.resolve("crypto.jfr");
        QueueSession session;
        byte[][] written;
        try (Recording crypto = new Recording()) {
            crypto.enable("jdk.SecurityProviderService");
            crypto.start();
            session = open(ClientCredentials.load(settings, "127.0.0.1"), 16);
            String status = h.onLoop(() -> session.link().tlsStatus());
            assertTrue(status.startsWith("userspace TLS 1.3") && status.contains("psk:alice"), status);

            long before = TlsRelay.bytesThroughJava();
            written = roundTrip(16, 0, new Random(2));
            long payload = 2L * 16 * (256 << 10);
            assertTrue(TlsRelay.bytesThroughJava() - before >= payload, () -> "the relay moved "
                    + (TlsRelay.bytesThroughJava() - before) + " plaintext bytes for " + payload + " of payload");
            crypto.stop();
            crypto.dump(recorded);
        }
        // The records are sealed and opened by the JDK's AES-GCM (AES-NI and CLMUL intrinsics), not in plain Java.
        List<String> ciphers = RecordingFile.readAllEvents(recorded).stream()
                .filter(e -> "Cipher".equals(e.getString("type"))).map(e -> e.getString("algorithm")).toList();
        assertTrue(ciphers.contains("AES/GCM/NoPadding"), "ciphers the JCA handed out: " + ciphers);
        // None of it on the link's event loop, which serves other queues meanwhile: the handshake's crypto runs on
        // HandshakeCrypto's threads, the records' on the relay's.
        List<String> threads = RecordingFile.readAllEvents(recorded).stream()
                .map(e -> e.getThread() == null ? "?" : e.getThread().getJavaName()).distinct().toList();
        assertTrue(threads.stream().allMatch(n -> n.startsWith("nbdgate-handshake-") || n.startsWith("nbdgate-tls-"))
                && threads.stream().anyMatch(n -> n.startsWith("nbdgate-handshake-")), "crypto ran on " + threads);

        server.restart();
        byte[][] afterRestart = roundTrip(16, 8L << 20, new Random(3)); // the first requests wait for the reconnect
        assertTrue(h.onLoop(() -> session.link().tlsStatus()).startsWith("userspace TLS 1.3"));
        assertTrue(session.status().reconnects() >= 1, "no reconnect after the restart");
        // What went to the first server is still there, read through the second connection's relay.
        for (int t = 0; t < 16; t++) {
            MemorySegment dst = h.arena.allocate(256 << 10);
            assertEquals(256 << 10, get(h.submit(t, Command.READ, 0, (long) t << 18, 256 << 10, dst)));
            assertArrayEquals(written[t], dst.toArray(ValueLayout.JAVA_BYTE), "tag " + t);
        }
        assertEquals(16, afterRestart.length);
    }

    /**
     * A server that verifies our certificate too; the CA, certificate and key as single files in places of their
     * own, as nbd-client's cacertfile, certfile and keyfile (and nbdtab) name them.
     */
    @Test
    void x509BothWaysWithSingleFiles() throws Exception {
        TestPki pki = TestPki.ca("nbdgate test CA");
        Path serverDir = pki.writeServerDir(dir.resolve("server"), pki.server("localhost", "localhost", "127.0.0.1"));
        Path clientDir = pki.writeClientDir(dir.resolve("client"), pki.client("nbdgate client"));
        Path files = Files.createDirectories(dir.resolve("files"));
        Path ca = Files.copy(clientDir.resolve("ca-cert.pem"), files.resolve("ca.crt"));
        Path cert = Files.copy(clientDir.resolve("client-cert.pem"), files.resolve("me.crt"));
        Path key = Files.copy(clientDir.resolve("client-key.pem"), files.resolve("me.key"));
        server = h.serving(ExternalNbdServer.nbdkit(dir, List.of("--tls=require", "--tls-certificates=" + serverDir,
                "--tls-verify-peer"), "memory", "size=64M"));
        TlsSettings settings = new TlsSettings(null, null, null, null, null, null, ca, cert, key);
        QueueSession session = open(ClientCredentials.load(settings, "127.0.0.1"), 8);
        String status = h.onLoop(() -> session.link().tlsStatus());
        assertTrue(status.startsWith("userspace TLS 1.3") && status.contains("CN=localhost"), status);
        roundTrip(8, 0, new Random(4));
    }

    /** Kernel TLS is TCP's: over a unix socket (nbds+unix://) TLS always runs in userspace. */
    @Test
    void aUnixSocketWithAPreSharedKey() throws Exception {
        Path keys = pskFile("carol");
        server = h.serving(ExternalNbdServer.nbdkitUnix(dir, List.of("--tls=require", "--tls-psk=" + keys), "memory",
                "size=64M"));
        QueueSession session = open(UnixDomainSocketAddress.of(server.uri().socketPath()),
                ClientCredentials.load(new TlsSettings(null, null, null, null, keys, "carol"), "localhost"), 8);
        String status = h.onLoop(() -> session.link().tlsStatus());
        assertTrue(status.startsWith("userspace TLS 1.3") && status.contains("psk:carol"), status);
        roundTrip(8, 0, new Random(6));
    }

    /** Also: the server renews its keys (TLS 1.3 KeyUpdate, both directions) while data flows. */
    @Test
    void theEmbeddedServerWithAPreSharedKey() throws Exception {
        Path keys = pskFile("bob");
        try (var embedded = EmbeddedNbdServer.start(NbdServerConfig.tcp("127.0.0.1", 0,
                List.of(Export.memory("", 64L << 20, false))).withTls(
                        new ServerTls(ServerHandshake.Tls.REQUIRE, ServerCredentials.psk(keys), 256 << 10)))) {
            long keyUpdates = TlsServerEngine.keyUpdatesSent();
            h.session = null;
            QueueSession session = open(new InetSocketAddress("127.0.0.1", embedded.port()),
                    ClientCredentials.load(new TlsSettings(null, null, null, null, keys, "bob"), "127.0.0.1"), 8);
            String status = h.onLoop(() -> session.link().tlsStatus());
            assertTrue(status.startsWith("userspace TLS 1.3") && status.contains("psk:bob"), status);
            roundTrip(8, 0, new Random(5));
            // The server asked for new keys every 256 KiB it sent: 2 MiB of reads went through several.
            assertTrue(TlsServerEngine.keyUpdatesSent() - keyUpdates >= 4, "KeyUpdates: "
                    + (TlsServerEngine.keyUpdatesSent() - keyUpdates));
            session.stop(Duration.ofSeconds(1)).get(10, TimeUnit.SECONDS);
            h.session = null;
        }
    }

    /** Writes {@code n} 256 KiB blocks of random data from {@code base}, reads them back, compares. */
    private byte[][] roundTrip(int n, long base, Random random) throws Exception {
        int size = 256 << 10;
        byte[][] expected = new byte[n][size];
        List<CompletableFuture<Integer>> writes = new ArrayList<>();
        for (int t = 0; t < n; t++) {
            random.nextBytes(expected[t]);
            writes.add(h.submit(t, Command.WRITE, 0, base + ((long) t << 18), size,
                    h.arena.allocateFrom(ValueLayout.JAVA_BYTE, expected[t])));
        }
        for (CompletableFuture<Integer> w : writes) {
            assertEquals(size, get(w));
        }
        MemorySegment[] dst = new MemorySegment[n];
        List<CompletableFuture<Integer>> reads = new ArrayList<>();
        for (int t = 0; t < n; t++) {
            dst[t] = h.arena.allocate(size);
            reads.add(h.submit(t, Command.READ, 0, base + ((long) t << 18), size, dst[t]));
        }
        for (int t = 0; t < n; t++) {
            assertEquals(size, get(reads.get(t)));
            assertArrayEquals(expected[t], dst[t].toArray(ValueLayout.JAVA_BYTE), "tag " + t);
        }
        return expected;
    }

    private static int get(CompletableFuture<Integer> f) throws Exception {
        return f.get(60, TimeUnit.SECONDS);
    }
}
