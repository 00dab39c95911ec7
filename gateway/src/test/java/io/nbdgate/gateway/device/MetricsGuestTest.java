package io.nbdgate.gateway.device;

import static io.nbdgate.gateway.device.GuestProcesses.exec;
import static io.nbdgate.gateway.device.GuestProcesses.run;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.nbdgate.gateway.config.ZeroCopy;
import io.nbdgate.gateway.control.ControlServer;
import io.nbdgate.gateway.control.DeviceRegistry;
import io.nbdgate.gateway.testsupport.ExternalNbdServer;
import io.nbdgate.gateway.testsupport.PrometheusText;
import io.vertx.core.Vertx;
import java.net.InetSocketAddress;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * /metrics of a real device: block I/O from dd with O_DIRECT through ublk shows up as exactly the requests,
 * bytes and latencies it made, a server error as its errno, and each queue as connected.
 */
class MetricsGuestTest extends DeviceGuestTestBase {
    @TempDir
    Path dir;

    private ExternalNbdServer server;
    private final Vertx control = Vertx.vertx();
    private ControlServer status;

    @Override
    protected void afterDeviceClosed() {
        if (status != null) {
            status.stop();
        }
        control.close().await();
        if (server != null) {
            server.close();
        }
    }

    private PrometheusText scrape() throws Exception {
        HttpResponse<String> r = HttpClient.newHttpClient().send(HttpRequest.newBuilder(URI.create(
                "http://127.0.0.1:" + status.statusPort() + "/metrics")).timeout(Duration.ofSeconds(60)).build(),
                HttpResponse.BodyHandlers.ofString());
        assertEquals(200, r.statusCode(), r.body());
        return PrometheusText.parse(r.body());
    }

    private static double op(PrometheusText m, String name, String op) {
        return m.value(name, "device", "metrics-test", "op", op);
    }

    @Test
    void directIoThroughTheDeviceIsCountedExactly() throws Exception {
        Path trigger = dir.resolve("fail-writes");
        server = ExternalNbdServer.nbdkit(Files.createDirectories(dir.resolve("s")), List.of("--filter=error"),
                "memory", "size=64M", "error=ENOSPC", "error-pwrite-rate=100%", "error-pwrite-file=" + trigger);
        DeviceOptions o = new DeviceOptions("metrics-test", new InetSocketAddress("127.0.0.1", server.port()), "", 2,
                32, ZeroCopy.AUTO, false, -1, Duration.ofSeconds(10), Duration.ofSeconds(60), null);
        attach(o);
        DeviceRegistry registry = new DeviceRegistry();
        registry.add(device);
        status = new ControlServer(control, registry);
        status.listenStatus("127.0.0.1:0").await();
        String dev = device.blockDevice();

        PrometheusText before = scrape();
        assertEquals(device.queues(), before.value("nbdgate_queues", "device", "metrics-test"));
        assertEquals(32, before.value("nbdgate_queue_depth", "device", "metrics-test"));
        assertEquals(1, before.value("nbdgate_buffer_mode", "device", "metrics-test", "mode", device.mode().label()));
        for (int q = 0; q < device.queues(); q++) {
            assertEquals(1, before.value("nbdgate_connection_state", "device", "metrics-test", "queue", "" + q,
                    "state", "connected"));
        }
        // One 64 KiB request per dd block: O_DIRECT, one at a time, nothing to merge with.
        run("dd", "if=/dev/urandom", "of=" + dev, "bs=64k", "count=64", "oflag=direct", "status=none");
        run("dd", "if=" + dev, "of=/dev/null", "bs=4k", "count=100", "iflag=direct", "status=none");
        Files.createFile(trigger);
        GuestProcesses.Result failed = exec("dd", "if=/dev/zero", "of=" + dev, "bs=4k", "count=1", "oflag=direct",
                "status=none");
        assertNotEquals(0, failed.exit(), "the server fails writes now: " + failed.output());
        PrometheusText after = scrape();

        assertEquals(65, op(after, "nbdgate_requests_total", "write") - op(before, "nbdgate_requests_total", "write"));
        assertEquals(64 << 16, op(after, "nbdgate_request_bytes_total", "write")
                - op(before, "nbdgate_request_bytes_total", "write"), "the failed write moved nothing");
        double reads = op(after, "nbdgate_requests_total", "read") - op(before, "nbdgate_requests_total", "read");
        assertTrue(reads >= 100, "dd's reads, and any udev made: " + reads);
        assertTrue(op(after, "nbdgate_request_bytes_total", "read") - op(before, "nbdgate_request_bytes_total", "read")
                >= 100 * 4096);
        assertEquals(1, after.value("nbdgate_request_errors_total", "device", "metrics-test", "errno", "ENOSPC"));
        assertEquals(op(after, "nbdgate_requests_total", "write"),
                op(after, "nbdgate_request_duration_seconds_count", "write"));
        assertEquals(0, after.value("nbdgate_requests_in_flight", "device", "metrics-test"));
        assertEquals(1, after.value("nbdgate_devices", "state", "connected"));
    }
}
