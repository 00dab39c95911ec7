package io.nbdgate.gateway.device;

import static io.nbdgate.gateway.device.GuestProcesses.fioVerify;
import static io.nbdgate.gateway.device.GuestProcesses.run;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.nbdgate.gateway.config.ZeroCopy;
import io.nbdgate.gateway.nbd.server.EmbeddedNbdServer;
import io.nbdgate.gateway.nbd.server.Export;
import io.nbdgate.gateway.nbd.server.NbdServerConfig;
import io.nbdgate.gateway.testsupport.ExternalNbdServer;
import io.nbdgate.ublk.BufferMode;
import java.net.InetSocketAddress;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The zero-copy device against the other servers: nbd-server with a file export, and nbdgate's own server. */
class ServersGuestTest extends DeviceGuestTestBase {
    @TempDir
    Path dir;

    private NbdDevice attach(int port, String export, int queues) throws Exception {
        // Connect timeout 60 s: two full guest runs (one with a second guest on the host) saw nbd-server take
        // more than 10 s to answer its first client under TCG; the product's default stays 10 s.
        DeviceOptions o = new DeviceOptions("servers", new InetSocketAddress("127.0.0.1", port), export, queues, 32,
                ZeroCopy.ON, false, -1, Duration.ofSeconds(60), Duration.ofSeconds(60), null);
        attach(o);
        assertEquals(BufferMode.ZERO_COPY, device.mode());
        return device;
    }

    @Test
    void nbdServerFileExportHoldsExactlyWhatTheDeviceWrote() throws Exception {
        Path file = dir.resolve("export.img");
        run("truncate", "-s", "64M", file.toString());
        try (ExternalNbdServer server = ExternalNbdServer.nbdServer(dir, file, "disk")) {
            // The harness runs nbd-server with -d, which serves one connection at a time.
            try {
                attach(server.port(), "disk", 1);
            } catch (Exception e) {
                throw new AssertionError("attach to nbd-server failed; its output:\n" + server.output(), e);
            }
            fioVerify(device.blockDevice(), "randwrite", "4k", "24M");
            fioVerify(device.blockDevice(), "write", "1M", "48M");
            GuestProcesses.ext4RoundTrip(device.blockDevice(), dir.resolve("mnt"));
            Path fromDevice = dir.resolve("device.img");
            run("dd", "if=" + device.blockDevice(), "of=" + fromDevice, "bs=1M", "iflag=direct", "status=none");
            device.close();
            device = null;
            assertEquals(sha256(file), sha256(fromDevice), "the backing file differs from what the device held");
        }
    }

    @Test
    void embeddedServerRoundTripsWithMultiConn() throws Exception {
        try (EmbeddedNbdServer server = EmbeddedNbdServer.start(NbdServerConfig.tcp("127.0.0.1", 0,
                List.of(Export.memory("mem", 96L << 20, false))))) {
            attach(server.port(), "mem", 2);
            assertEquals(2, device.queues(), "the embedded server advertises CAN_MULTI_CONN");
            fioVerify(device.blockDevice(), "randwrite", "4k", "24M");
            fioVerify(device.blockDevice(), "write", "1M", "48M");
            GuestProcesses.ext4RoundTrip(device.blockDevice(), dir.resolve("mnt"));
            Path fromDevice = dir.resolve("device.img");
            Path fromServer = dir.resolve("server.img");
            run("dd", "if=" + device.blockDevice(), "of=" + fromDevice, "bs=1M", "iflag=direct", "status=none");
            run("nbdcopy", server.uri("mem"), fromServer.toString());
            assertEquals(sha256(fromServer), sha256(fromDevice));
        }
    }

    private static String sha256(Path p) throws Exception {
        return run("sha256sum", p.toString()).split(" ")[0];
    }
}
