package io.nbdgate.gateway.control;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.nbdgate.gateway.config.DeviceConfig;
import io.nbdgate.gateway.link.LinkOptions;
import io.nbdgate.gateway.link.Request;
import io.nbdgate.gateway.metrics.DeviceMetricsSource;
import io.nbdgate.gateway.metrics.QueueCounters;
import io.nbdgate.gateway.session.LinkStatus;
import io.nbdgate.gateway.session.QueueSession;
import io.nbdgate.gateway.session.ReconnectPolicy;
import io.nbdgate.gateway.testsupport.ExternalNbdServer;
import io.nbdgate.gateway.testsupport.PrometheusText;
import io.nbdgate.gateway.testsupport.SessionHarness;
import io.nbdgate.gateway.tls.ClientCredentials;
import io.nbdgate.gateway.tls.TlsSettings;
import io.nbdgate.protocol.Command;
import io.nbdgate.protocol.client.HandshakeConfig;
import io.vertx.core.Vertx;
import java.lang.foreign.MemorySegment;
import java.net.URI;
import java.net.UnixDomainSocketAddress;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * GET /metrics on a real status listener, after real traffic through a queue session against nbdkit: the
 * answer is valid Prometheus text (read by a strict parser, and by promtool where installed) with the series
 * and values that traffic must give. The device is a source over the session: a real one needs a kernel.
 */
class MetricsEndpointTest {
    private static final int DEPTH = 8;
    private static final int SIZE = 64 << 10;

    @TempDir
    Path dir;

    private final HttpClient http = HttpClient.newHttpClient();
    private Vertx vertx;
    private DeviceRegistry registry;
    private ControlServer control;
    private SessionHarness h;
    private ExternalNbdServer server;

    /** What a served device reports, over one queue session. */
    record SessionSource(String name, QueueSession session) implements DeviceMetricsSource {
        public String bufferMode() {
            return "copy";
        }

        public int queueDepth() {
            return DEPTH;
        }

        public List<QueueCounters> queueCounters() {
            return List.of(session.counters());
        }

        public List<LinkStatus> linkStates() {
            return List.of(session.status());
        }

        public String state() {
            return session.status().label();
        }
    }

    @BeforeEach
    void setUp() throws Exception {
        System.setProperty("nbdgate.runDir", dir.resolve("run").toString());
        vertx = Vertx.vertx();
        registry = new DeviceRegistry();
        control = new ControlServer(vertx, registry);
        control.listenStatus("127.0.0.1:0").await();
        h = new SessionHarness();
    }

    @AfterEach
    void tearDown() throws Exception {
        h.close();
        control.stop();
        vertx.close().await();
        System.clearProperty("nbdgate.runDir");
    }

    private HttpResponse<String> get(String path) throws Exception {
        return http.send(HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + control.statusPort() + path))
                .timeout(Duration.ofSeconds(20)).build(), HttpResponse.BodyHandlers.ofString());
    }

    private PrometheusText scrape() throws Exception {
        HttpResponse<String> r = get("/metrics");
        assertEquals(200, r.statusCode(), r.body());
        assertTrue(r.headers().firstValue("content-type").orElse("").startsWith("text/plain; version=0.0.4"),
                r.headers().toString());
        promtoolCheck(r.body());
        return PrometheusText.parse(r.body());
    }

    private int run(int tag, Command cmd, long offset, long length) throws Exception {
        MemorySegment buf = cmd == Command.READ || cmd == Command.WRITE ? h.arena.allocate(length) : null;
        return h.submit(tag, cmd, 0, offset, length, buf).get(20, TimeUnit.SECONDS);
    }

    @Test
    void aTlsConnectionShowsWhereItsRecordsAreEncrypted() throws Exception {
        Path keys = dir.resolve("keys.psk");
        Files.writeString(keys, "alice:" + "5a".repeat(32) + "\n");
        server = h.serving(ExternalNbdServer.nbdkit(dir, List.of("--tls=require", "--tls-psk=" + keys), "memory", "size=16M"));
        LinkOptions plain = h.linkOptions(Duration.ofSeconds(30), Duration.ofSeconds(10),
                DeviceConfig.DEFAULT_STAGE_READS_MAX);
        ClientCredentials psk = ClientCredentials.load(new TlsSettings(null, null, null, null, keys, "alice"),
                "127.0.0.1");
        QueueSession s = h.opening(server.socketAddress(), new HandshakeConfig("", HandshakeConfig.Goal.GO, true,
                true, true), DEPTH, new LinkOptions(plain.connectTimeout(), plain.ioTimeout(), plain.zeroFd(),
                plain.sendZcMin(), plain.stageMax(), plain.keepalive(), psk), ReconnectPolicy.of(Duration.ofMinutes(1)))
                .get(60, TimeUnit.SECONDS);
        SessionSource disk = new SessionSource("disk", s);
        registry.metrics().bind(disk);
        PrometheusText m = scrape();
        // This host has no kernel TLS, a native ublk kernel may: whichever runs it is the one series at 1.
        String mode = s.status().tls().startsWith("kernel ") ? "kernel" : "userspace";
        assertEquals(1, m.value("nbdgate_tls", "device", "disk", "queue", "0", "mode", mode));
        assertEquals(0, m.value("nbdgate_tls", "device", "disk", "queue", "0", "mode", "none"));
        registry.metrics().unbind(disk);
    }

    @Test
    void trafficShowsUpAsCountsBytesErrorsAndLatencyHistograms() throws Exception {
        server = h.serving(ExternalNbdServer.nbdkitUnix(dir, List.of("--filter=error"), "memory", "size=64M",
                "error=ENOSPC", "error-trim-rate=100%"));
        QueueSession s = h.open(UnixDomainSocketAddress.of(server.uri().socketPath()), HandshakeConfig.go(""), DEPTH,
                Duration.ofSeconds(10), DeviceConfig.DEFAULT_STAGE_READS_MAX, ReconnectPolicy.of(Duration.ofMinutes(1)));
        for (int i = 0; i < 4; i++) {
            assertEquals(SIZE, run(i, Command.WRITE, (long) i * SIZE, SIZE));
        }
        for (int i = 0; i < 3; i++) {
            assertEquals(SIZE, run(i, Command.READ, (long) i * SIZE, SIZE));
        }
        assertEquals(0, run(0, Command.FLUSH, 0, 0));
        assertEquals(-28, run(1, Command.TRIM, 0, SIZE), "nbdkit's error filter fails trims with ENOSPC");
        SessionSource disk = new SessionSource("disk", s);
        registry.metrics().bind(disk);

        PrometheusText m = scrape();
        assertEquals("counter", m.types.get("nbdgate_requests_total"));
        assertEquals("histogram", m.types.get("nbdgate_request_duration_seconds"));
        assertEquals(4, m.value("nbdgate_requests_total", "device", "disk", "op", "write"));
        assertEquals(3, m.value("nbdgate_requests_total", "device", "disk", "op", "read"));
        assertEquals(1, m.value("nbdgate_requests_total", "device", "disk", "op", "flush"));
        assertEquals(1, m.value("nbdgate_requests_total", "device", "disk", "op", "trim"));
        assertEquals(0, m.value("nbdgate_requests_total", "device", "disk", "op", "write_zeroes"));
        assertEquals(4.0 * SIZE, m.value("nbdgate_request_bytes_total", "device", "disk", "op", "write"));
        assertEquals(3.0 * SIZE, m.value("nbdgate_request_bytes_total", "device", "disk", "op", "read"));
        assertEquals(0, m.value("nbdgate_request_bytes_total", "device", "disk", "op", "trim"), "it failed");
        assertEquals(1, m.value("nbdgate_request_errors_total", "device", "disk", "errno", "ENOSPC"));
        assertFalse(m.samples.stream().anyMatch(x -> x.name().equals("nbdgate_request_errors_total")
                && !x.labels().get("errno").equals("ENOSPC")), "only errors that happened are listed");
        assertEquals(3, m.value("nbdgate_request_duration_seconds_count", "device", "disk", "op", "read"));
        assertEquals(3, m.value("nbdgate_request_duration_seconds_bucket", "device", "disk", "op", "read", "le", "+Inf"));
        assertTrue(m.value("nbdgate_request_duration_seconds_sum", "device", "disk", "op", "read") > 0);
        assertEquals(0, m.value("nbdgate_request_duration_seconds_bucket", "device", "disk", "op", "read",
                "le", "1.0E-5"), "no round trip to nbdkit takes 10 µs or less");
        assertEquals(0, m.value("nbdgate_requests_in_flight", "device", "disk"));
        assertEquals(DEPTH, m.value("nbdgate_queue_depth", "device", "disk"));
        assertEquals(1, m.value("nbdgate_queues", "device", "disk"));
        assertEquals(0, m.value("nbdgate_reconnects_total", "device", "disk"));
        assertEquals(0, m.value("nbdgate_resent_requests_total", "device", "disk"));
        assertEquals(1, m.value("nbdgate_connection_state", "device", "disk", "queue", "0", "state", "connected"));
        assertEquals(0, m.value("nbdgate_connection_state", "device", "disk", "queue", "0", "state", "reconnecting"));
        assertEquals(0, m.value("nbdgate_connection_state", "device", "disk", "queue", "0", "state", "failed"));
        assertEquals(1, m.value("nbdgate_buffer_mode", "device", "disk", "mode", "copy"));
        assertEquals(1, m.value("nbdgate_tls", "device", "disk", "queue", "0", "mode", "none"));
        assertEquals(0, m.value("nbdgate_tls", "device", "disk", "queue", "0", "mode", "kernel"));
        assertEquals(0, m.value("nbdgate_tls", "device", "disk", "queue", "0", "mode", "userspace"));
        assertEquals(1, m.value("nbdgate_devices", "state", "connected"));
        assertEquals(0, m.value("nbdgate_devices", "state", "failed"));
        for (String jvm : List.of("jvm_memory_used_bytes", "jvm_gc_", "jvm_threads_live_threads", "process_cpu")) {
            assertTrue(m.has(jvm), jvm + " missing");
        }

        registry.metrics().unbind(disk);
        PrometheusText after = scrape();
        assertFalse(after.samples.stream().anyMatch(x -> "disk".equals(x.labels().get("device"))),
                "a device's series go with it");
        assertEquals(0, after.value("nbdgate_devices", "state", "connected"));
    }

    @Test
    void aLostConnectionShowsAsReconnectingThenAsAReconnectAndAResentRequest() throws Exception {
        Path file = dir.resolve("disk.img");
        try (var raf = new java.io.RandomAccessFile(file.toFile(), "rw")) {
            raf.setLength(16 << 20);
        }
        // Replies wait a second, so the read is surely on the connection when the server dies.
        server = h.serving(ExternalNbdServer.nbdkit(dir, List.of("--filter=delay"), "file", "file=" + file, "rdelay=1"));
        QueueSession s = h.open(server.socketAddress(), HandshakeConfig.go(""), DEPTH, Duration.ofSeconds(30),
                DeviceConfig.DEFAULT_STAGE_READS_MAX, ReconnectPolicy.of(Duration.ofMinutes(1)));
        registry.metrics().bind(new SessionSource("disk", s));
        CompletableFuture<Integer> read = h.submit(0, Command.READ, 0, 0, 4096, h.arena.allocate(4096));
        until(() -> h.onLoop(() -> s.request(0).phase()) == Request.Phase.ON_LINK, Duration.ofSeconds(10),
                "the read is on the connection");
        server.kill();
        until(() -> s.status().state() == LinkStatus.State.RECONNECTING, Duration.ofSeconds(10),
                "the session notices the loss");
        PrometheusText lost = scrape();
        assertEquals(1, lost.value("nbdgate_connection_state", "device", "disk", "queue", "0", "state", "reconnecting"));
        assertEquals(0, lost.value("nbdgate_connection_state", "device", "disk", "queue", "0", "state", "connected"));
        assertEquals(1, lost.value("nbdgate_devices", "state", "reconnecting"));
        assertEquals(1, lost.value("nbdgate_requests_in_flight", "device", "disk"));
        assertEquals(1, lost.value("nbdgate_reconnects_total", "device", "disk"));

        server.startAgain();
        assertEquals(4096, read.get(30, TimeUnit.SECONDS));
        PrometheusText back = scrape();
        assertEquals(1, back.value("nbdgate_connection_state", "device", "disk", "queue", "0", "state", "connected"));
        assertEquals(1, back.value("nbdgate_resent_requests_total", "device", "disk"));
        assertEquals(0, back.value("nbdgate_requests_in_flight", "device", "disk"));
        // Arrival to answer includes the wait for the new connection and its second one-second delay.
        assertEquals(0, back.value("nbdgate_request_duration_seconds_bucket", "device", "disk", "op", "read",
                "le", "0.65536"));
        assertEquals(1, back.value("nbdgate_request_duration_seconds_count", "device", "disk", "op", "read"));
    }

    @Test
    void theStatusListenerStaysReadOnly() throws Exception {
        HttpResponse<String> r = http.send(HttpRequest.newBuilder(URI.create("http://127.0.0.1:"
                + control.statusPort() + "/metrics")).POST(HttpRequest.BodyPublishers.noBody()).build(),
                HttpResponse.BodyHandlers.ofString());
        assertEquals(405, r.statusCode());
        PrometheusText m = scrape(); // no device: the daemon's own series, and valid text all the same
        assertEquals(0, m.value("nbdgate_devices", "state", "connected"));
        assertFalse(m.has("nbdgate_request_duration_seconds"));
    }

    interface Check {
        boolean ok() throws Exception;
    }

    private static void until(Check c, Duration limit, String what) throws Exception {
        long end = System.nanoTime() + limit.toNanos();
        while (!c.ok()) {
            assertTrue(System.nanoTime() < end, what + ": not within " + limit);
            Thread.sleep(20);
        }
    }

    /**
     * `promtool check metrics` (Debian's prometheus package; PROMTOOL names it if not on PATH) where it is
     * installed: a second, independent reader, which also lints names and help.
     */
    private void promtoolCheck(String body) throws Exception {
        String promtool = System.getenv("PROMTOOL") != null ? System.getenv("PROMTOOL") : "promtool";
        if (System.getenv("PROMTOOL") == null && !onPath(promtool)) {
            return;
        }
        Process p = new ProcessBuilder(promtool, "check", "metrics").redirectErrorStream(true).start();
        try (var in = p.getOutputStream()) {
            in.write(body.getBytes(java.nio.charset.StandardCharsets.UTF_8));
        }
        String out = new String(p.getInputStream().readAllBytes(), java.nio.charset.StandardCharsets.UTF_8);
        assertTrue(p.waitFor(30, TimeUnit.SECONDS), "promtool hangs");
        // Exit 3 is lint only: fine for Micrometer's JVM series (names dashboards expect), not for ours.
        assertTrue(p.exitValue() == 0 || p.exitValue() == 3 && !out.contains("nbdgate_"),
                "promtool check metrics, exit " + p.exitValue() + ":\n" + out);
    }

    private static boolean onPath(String binary) {
        for (String d : System.getenv().getOrDefault("PATH", "").split(":")) {
            if (!d.isEmpty() && Files.isExecutable(Path.of(d, binary))) {
                return true;
            }
        }
        return false;
    }
}
