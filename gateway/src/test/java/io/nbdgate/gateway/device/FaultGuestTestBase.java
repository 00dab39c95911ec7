package io.nbdgate.gateway.device;

import static io.nbdgate.gateway.device.GuestProcesses.run;

import io.nbdgate.gateway.config.ZeroCopy;
import io.nbdgate.gateway.testsupport.ExternalNbdServer;
import io.nbdgate.gateway.testsupport.NetNamespace;
import java.nio.file.Path;
import java.time.Duration;
import org.junit.jupiter.api.io.TempDir;

/**
 * What the reconnect and network-fault tests share: a backing file, a server that can be killed and
 * started again, an optional network namespace, and the device's options. Server and namespace are torn
 * down after the device, whatever the test did to them.
 */
abstract class FaultGuestTestBase extends DeviceGuestTestBase {
    static final long MIB = 1L << 20;
    // Attach and every reconnect handshake: nbd-server has taken more than 10 s to answer under TCG.
    static final Duration CONNECT_TIMEOUT = Duration.ofSeconds(30);

    @TempDir
    Path dir;

    protected ExternalNbdServer server;
    protected NetNamespace ns;

    @Override
    protected void afterDeviceClosed() {
        if (server != null) {
            server.close();
        }
        if (ns != null) {
            ns.close();
        }
    }

    /** A sparse backing file of {@code size} bytes in the test's directory. */
    Path backingFile(String name, long size) throws Exception {
        Path file = dir.resolve(name);
        run("truncate", "-s", Long.toString(size), file.toString());
        return file;
    }

    /** Options for {@code server} with depth 32 and the buffer mode the kernel allows best. */
    DeviceOptions options(ExternalNbdServer s, int queues, Duration ioTimeout, Duration reconnectTimeout) {
        return new DeviceOptions("fault", s.socketAddress(), s.uri().exportName(), queues, 32, ZeroCopy.AUTO,
                false, -1, CONNECT_TIMEOUT, ioTimeout, null).withReconnectTimeout(reconnectTimeout);
    }

    /** The device's per-queue link states, for assertion messages. */
    String links() {
        return device == null ? "(no device)" : device.linkStates().toString();
    }
}
