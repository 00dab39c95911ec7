package io.nbdgate.gateway.device;

import static io.nbdgate.gateway.device.GuestProcesses.fioVerify;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.nbdgate.gateway.config.DeviceConfig;
import io.nbdgate.gateway.config.StructuredReplies;
import io.nbdgate.gateway.config.ZeroCopy;
import io.nbdgate.gateway.link.DataPathStats;
import io.nbdgate.gateway.link.LinkCounters;
import io.nbdgate.gateway.nbd.server.EmbeddedNbdServer;
import io.nbdgate.gateway.nbd.server.Export;
import io.nbdgate.gateway.nbd.server.NbdServerConfig;
import io.nbdgate.gateway.nbd.server.ServerTls;
import io.nbdgate.gateway.session.LinkStatus;
import io.nbdgate.gateway.testsupport.ExternalNbdServer;
import io.nbdgate.gateway.testsupport.ServerHost;
import io.nbdgate.gateway.testsupport.TestPki;
import io.nbdgate.gateway.tls.ServerCredentials;
import io.nbdgate.gateway.tls.TlsRelay;
import io.nbdgate.protocol.server.ServerHandshake;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.HashMap;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * Devices over {@code nbds://} with kernel TLS, against nbdkit with GnuTLS: the kernel encrypts and decrypts
 * every record (/proc/net/tls_stat counts the connections' software TX and RX contexts), request pages still
 * go to the socket and come from it with no copy in Java, fio verifies every byte and ext4 round-trips, and a
 * server restart in the middle of a write loses nothing (every reconnect runs TLS again).
 */
class TlsGuestTest extends FaultGuestTestBase {

    /**
     * Kernel TLS allocates its cipher (gcm(aes), chacha20poly1305) when the keys arrive; a real system's
     * modprobe brings the modules, the guest has none: its runner unpacked them (nbdgate.guestModules,
     * modules/on-demand in load order) and they are loaded here, once. Natively there is nothing to do.
     */
    @BeforeAll
    static void cipherModules() throws Exception {
        String dir = System.getProperty("nbdgate.guestModules", "");
        if (dir.isEmpty()) {
            return;
        }
        for (String m : Files.readString(Path.of(dir, "on-demand")).trim().split("\\s+")) {
            GuestProcesses.Result r = GuestProcesses.exec("/bin/busybox", "insmod", Path.of(dir, m + ".ko").toString());
            assertTrue(r.exit() == 0 || r.output().contains("exists"), "insmod " + m + ": " + r.output());
        }
    }

    private static Map<String, Long> tlsStat() throws Exception {
        Map<String, Long> m = new HashMap<>();
        for (String line : Files.readAllLines(Path.of("/proc/net/tls_stat"))) {
            String[] f = line.trim().split("\\s+");
            if (f.length == 2) {
                m.put(f[0], Long.parseLong(f[1]));
            }
        }
        return m;
    }

    private static long delta(Map<String, Long> after, Map<String, Long> before, String key) {
        return after.getOrDefault(key, 0L) - before.getOrDefault(key, 0L);
    }

    /**
     * Connect plus both handshakes: BouncyCastle's key exchange and signatures run in a cold JVM under TCG, with
     * another guest on the same CPUs in the full suite, and have taken more than 30 s there.
     */
    private static final Duration TLS_CONNECT_TIMEOUT = Duration.ofSeconds(120);

    /**
     * The embedded server runs in this JVM and encrypts in Java: under TCG a queue of 1 MiB replies has taken it
     * more than 30 s, which is the server's pace here, not a lost connection.
     */
    private static final Duration TLS_IO_TIMEOUT = Duration.ofMinutes(5);

    private DeviceOptions options(String uri, int queues) throws Exception {
        return DeviceOptions.from(new DeviceConfig("tls", uri, queues, 32, ZeroCopy.ON, false, -1, TLS_CONNECT_TIMEOUT,
                TLS_IO_TIMEOUT, DeviceConfig.DEFAULT_SEND_ZC_MIN, DeviceConfig.DEFAULT_STAGE_READS_MAX, true,
                StructuredReplies.AUTO)).withReconnectTimeout(Duration.ofMinutes(5));
    }

    private Path pskFile(String identity) throws IOException {
        return Files.writeString(dir.resolve(identity + ".psk"), identity + ":" + "5e".repeat(32) + "\n");
    }

    /** The embedded server in this JVM, a 64 MiB memory export "disk" over TLS with {@code keys}. */
    private static EmbeddedNbdServer embeddedServer(Path keys, long keyUpdateBytes) throws Exception {
        return EmbeddedNbdServer.start(NbdServerConfig.tcp("127.0.0.1", 0,
                List.of(Export.memory("disk", 64 * MIB, false))).withTls(
                        new ServerTls(ServerHandshake.Tls.REQUIRE, ServerCredentials.psk(keys), keyUpdateBytes)));
    }

    /** Attaches with TLS kept in userspace, as where the kernel has no tls module (-Dnbdgate.kernelTls=false). */
    private void attachWithUserspaceTls(String uri) throws Exception {
        System.setProperty("nbdgate.kernelTls", "false");
        try {
            attach(options(uri, 1));
        } finally {
            System.clearProperty("nbdgate.kernelTls");
        }
    }

    @Test
    void x509KernelTlsCarriesEveryByteAndSurvivesARestart() throws Exception {
        TestPki pki = TestPki.ca("nbdgate test CA");
        Path serverDir = pki.writeServerDir(dir.resolve("server-pki"), pki.server("localhost", "localhost", "127.0.0.1"));
        Path clientDir = pki.writeClientDir(dir.resolve("client-pki"), null);
        Path file = backingFile("export.img", 64 * MIB);
        server = ExternalNbdServer.nbdkit(ServerHost.LOOPBACK, dir, List.of("--tls=require",
                "--tls-certificates=" + serverDir), "file", file.toString());
        Map<String, Long> before = tlsStat();
        attach(options("nbds://127.0.0.1:" + server.port() + "/?tls-certificates=" + clientDir, 1));
        Map<String, Long> during = tlsStat();
        assertEquals(1, delta(during, before, "TlsCurrTxSw"), "one connection's TX in the kernel: " + during);
        assertEquals(1, delta(during, before, "TlsCurrRxSw"), "one connection's RX in the kernel: " + during);
        String tls = device.linkStates().getFirst().tls();
        assertTrue(tls != null && tls.startsWith("kernel TLS 1.3 ") && tls.endsWith("CN=localhost"), tls);

        PayloadBytes payload = PayloadBytes.now();
        fioVerify(device.blockDevice(), "randwrite", "4k", "16M");
        fioVerify(device.blockDevice(), "write", "1M", "32M");
        GuestProcesses.ext4RoundTrip(device.blockDevice(), dir.resolve("mnt"));
        assertPayloadMovedAs(ZeroCopy.ON, payload);

        KernelLog log = KernelLog.mark("restart of nbdkit over TLS");
        try (FioJob fio = FioJob.start(dir, device, "--rw=randwrite", "--bssplit=4k/60:64k/30:256k/10",
                "--size=16M", "--do_verify=1")) {
            fio.awaitWritten(4 * MIB, Duration.ofMinutes(3));
            server.restart();
            awaitReconnects(1);
            fio.awaitWritten(10 * MIB, Duration.ofMinutes(3));
            server.restart();
            try {
                fio.assertClean(Duration.ofMinutes(5));
            } catch (AssertionError e) {
                throw new AssertionError(e.getMessage() + "\n" + server + " said:\n" + server.output(), e);
            }
        }
        log.assertNoUblkIoErrors();
        assertTrue(device.reconnects() >= 2, () -> "2 restarts, " + device.reconnects() + " reconnects: " + links());
        assertTrue(device.linkStates().stream().allMatch(s -> s.state() == LinkStatus.State.CONNECTED), this::links);
        assertEquals(1, delta(tlsStat(), before, "TlsCurrTxSw"), "after the reconnects: one connection, in the kernel");
        device.close();
        device = null;
        assertEquals(0, delta(tlsStat(), before, "TlsCurrTxSw"), "detached: no TLS context left");
    }

    /** Until {@code n} links were replaced and every queue is connected again (each time through TLS). */
    private void awaitReconnects(long n) throws InterruptedException {
        long deadline = System.nanoTime() + Duration.ofMinutes(3).toNanos();
        while (device.reconnects() < n
                || !device.linkStates().stream().allMatch(s -> s.state() == LinkStatus.State.CONNECTED)) {
            if (System.nanoTime() > deadline) {
                throw new AssertionError("no reconnect within 3 minutes: " + links());
            }
            Thread.sleep(200);
        }
    }

    /** TLS 1.2 (other keys, record numbers from 1, explicit nonces) and a client certificate, against nbd-server. */
    @Test
    void tls12WithAClientCertificateAgainstNbdServer() throws Exception {
        TestPki pki = TestPki.ca("nbdgate test CA");
        Path serverDir = pki.writeServerDir(dir.resolve("server-pki"), pki.server("localhost", "localhost", "127.0.0.1"));
        Path clientDir = pki.writeClientDir(dir.resolve("client-pki"), pki.client("nbdgate"));
        server = ExternalNbdServer.nbdServerTls(dir, backingFile("export.img", 32 * MIB), "disk", serverDir);
        Map<String, Long> before = tlsStat();
        try {
            attach(options("nbds://127.0.0.1:" + server.port() + "/disk?tls-certificates=" + clientDir, 1));
        } catch (Exception e) {
            throw new AssertionError("attach to nbd-server over TLS failed; its output:\n" + server.output(), e);
        }
        assertEquals(1, delta(tlsStat(), before, "TlsCurrRxSw"), "the connection's RX in the kernel");
        String tls = device.linkStates().getFirst().tls();
        assertTrue(tls != null && tls.startsWith("kernel TLS 1.2 "), tls);
        PayloadBytes payload = PayloadBytes.now();
        fioVerify(device.blockDevice(), "randwrite", "4k", "8M");
        fioVerify(device.blockDevice(), "write", "1M", "24M");
        assertPayloadMovedAs(ZeroCopy.ON, payload);
    }

    /**
     * The demo end to end over TLS: the embedded server requires it, the device runs on kernel TLS. A healthy run
     * says nothing a user would read as a fault (the server encrypting on its event loop once tripped Vert.x's
     * blocked-thread checker here).
     */
    @Test
    void demoOverTls() throws Exception {
        String out = GuestProcesses.run(GuestProcesses.ROOT.resolve("bin/nbdgate").toString(), "demo", "--tls",
                "--size", "128M", "--file-size", "16M", "--queues", "1", "--connect-timeout", "120");
        assertTrue(out.contains("TLS: kernel TLS 1.3") && out.contains("psk:demo"), out);
        assertTrue(out.contains("nbds://127.0.0.1:"), out);
        assertEquals(List.of(), GuestProcesses.loudLines(out), "a healthy demo logged these; all it said:\n" + out);
    }

    @Test
    void pskKernelTlsOnTwoQueues() throws Exception {
        Path keys = dir.resolve("keys.psk");
        byte[] key = new byte[32];
        new java.security.SecureRandom().nextBytes(key);
        Files.writeString(keys, "alice:" + HexFormat.of().formatHex(key) + "\n");
        server = ExternalNbdServer.nbdkit(ServerHost.LOOPBACK, dir, List.of("--tls=require", "--tls-psk=" + keys),
                "memory", "size=96M");
        Map<String, Long> before = tlsStat();
        attach(options("nbds://alice@127.0.0.1:" + server.port() + "/?tls-psk-file=" + keys, 2));
        assertEquals(2, device.queues(), "nbdkit's memory plugin allows multi-conn");
        assertEquals(2, delta(tlsStat(), before, "TlsCurrRxSw"), "both connections' RX in the kernel");
        String tls = device.linkStates().getFirst().tls();
        assertTrue(tls != null && tls.endsWith("psk:alice"), tls);
        PayloadBytes payload = PayloadBytes.now();
        fioVerify(device.blockDevice(), "randrw", "4k", "24M");
        fioVerify(device.blockDevice(), "write", "256k", "48M");
        GuestProcesses.ext4RoundTrip(device.blockDevice(), dir.resolve("mnt"));
        assertPayloadMovedAs(ZeroCopy.ON, payload);
    }

    /**
     * TLS in userspace (a {@link TlsRelay}), as where the kernel has no tls module: forced here with
     * -Dnbdgate.kernelTls=false. The reverse of the kernel mode: no TLS context in the kernel, every payload
     * byte encrypted or decrypted in Java; fio and ext4 as over kernel TLS.
     */
    @Test
    void userspaceTlsWhereTheKernelDoesNotTakeIt() throws Exception {
        TestPki pki = TestPki.ca("nbdgate test CA");
        Path serverDir = pki.writeServerDir(dir.resolve("server-pki"), pki.server("localhost", "localhost", "127.0.0.1"));
        Path clientDir = pki.writeClientDir(dir.resolve("client-pki"), null);
        server = ExternalNbdServer.nbdkit(ServerHost.LOOPBACK, dir, List.of("--tls=require",
                "--tls-certificates=" + serverDir), "memory", "size=96M");
        Map<String, Long> before = tlsStat();
        attachWithUserspaceTls("nbds://127.0.0.1:" + server.port() + "/?tls-certificates=" + clientDir);
        String tls = device.linkStates().getFirst().tls();
        assertTrue(tls != null && tls.startsWith("userspace TLS 1.3 ") && tls.endsWith("CN=localhost"), tls);
        assertEquals(0, delta(tlsStat(), before, "TlsCurrTxSw"), "no TX context in the kernel");
        assertEquals(0, delta(tlsStat(), before, "TlsCurrRxSw"), "no RX context in the kernel");
        long throughJava = TlsRelay.bytesThroughJava();
        PayloadBytes payload = PayloadBytes.now();
        fioVerify(device.blockDevice(), "randwrite", "4k", "16M");
        fioVerify(device.blockDevice(), "write", "1M", "32M");
        GuestProcesses.ext4RoundTrip(device.blockDevice(), dir.resolve("mnt"));
        assertPayloadMovedAs(ZeroCopy.ON, payload); // the link still moves request pages: to the relay's socket
        long moved = DataPathStats.fixedBufferBytes() - payload.fixed();
        long relayed = TlsRelay.bytesThroughJava() - throughJava;
        assertTrue(moved > 0 && relayed >= moved, "payload " + moved + " bytes, through Java's TLS " + relayed);
        device.close();
        device = null;

        // The embedded server with a pre-shared key, the same way.
        Path keys = pskFile("alice");
        try (var embedded = embeddedServer(keys, 0)) {
            attachWithUserspaceTls("nbds://alice@127.0.0.1:" + embedded.port() + "/disk?tls-psk-file=" + keys);
            String psk = device.linkStates().getFirst().tls();
            assertTrue(psk != null && psk.startsWith("userspace TLS 1.3 ") && psk.endsWith("psk:alice"), psk);
            long relayedBefore = TlsRelay.bytesThroughJava();
            fioVerify(device.blockDevice(), "randwrite", "4k", "8M");
            assertTrue(TlsRelay.bytesThroughJava() - relayedBefore >= 16 * MIB, "8 MiB written and read back");
            GuestProcesses.ext4RoundTrip(device.blockDevice(), dir.resolve("mnt2"));
            assertEquals(0, delta(tlsStat(), before, "TlsCurrRxSw"), "no RX context in the kernel");
            device.close();
            device = null;
        }
    }

    /**
     * TLS 1.3 KeyUpdate on kernel TLS: the embedded server asks for new keys in both directions every 4 MiB it
     * sends. The kernel takes each new receive key and, for our answer, each new send key (/proc/net/tls_stat's
     * rekey counters), and no connection is lost over it: a failed rekey would end the link and reconnect.
     * Then the server's close_notify, the alert it ends a connection with.
     */
    @Test
    void kernelTlsFollowsTheServersKeyUpdates() throws Exception {
        Path keys = pskFile("alice");
        EmbeddedNbdServer embedded = embeddedServer(keys, 4 * MIB);
        boolean stopped = false;
        try {
            Map<String, Long> before = tlsStat();
            attach(options("nbds://alice@127.0.0.1:" + embedded.port() + "/disk?tls-psk-file=" + keys, 1));
            String tls = device.linkStates().getFirst().tls();
            assertTrue(tls != null && tls.startsWith("kernel TLS 1.3 "), tls);
            fioVerify(device.blockDevice(), "write", "1M", "32M");
            Map<String, Long> after = tlsStat();
            assertTrue(delta(after, before, "TlsRxRekeyOk") >= 4, "receive rekeys: " + after);
            assertTrue(delta(after, before, "TlsTxRekeyOk") >= 4, "send rekeys (our answers): " + after);
            assertEquals(0, delta(after, before, "TlsRxRekeyError") + delta(after, before, "TlsTxRekeyError"), after::toString);
            assertEquals(0, device.reconnects(), this::links);

            // The server stops: its close_notify is a TLS alert the kernel hands over as a control record, which
            // ends the link (and the session reconnects) rather than being read as data or hanging it.
            long alerts = LinkCounters.tlsAlertsReceived();
            embedded.close();
            stopped = true;
            long deadline = System.nanoTime() + Duration.ofMinutes(2).toNanos();
            while (device.reconnects() < 1 && System.nanoTime() < deadline) {
                Thread.sleep(100);
            }
            assertTrue(device.reconnects() >= 1, this::links);
            assertEquals(1, LinkCounters.tlsAlertsReceived() - alerts, "the server's close_notify");
            device.close();
            device = null;
        } finally {
            if (!stopped) {
                embedded.close();
            }
        }
    }
}
