package io.nbdgate.gateway.device;

import static io.nbdgate.gateway.device.GuestProcesses.run;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.nbdgate.gateway.config.ZeroCopy;
import io.nbdgate.gateway.link.DataPathStats;
import io.nbdgate.gateway.testsupport.ExternalNbdServer;
import io.nbdgate.gateway.testsupport.NetNamespace;
import io.nbdgate.ublk.BufferMode;
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
        return options(s, queues, ioTimeout, reconnectTimeout, ZeroCopy.AUTO);
    }

    /**
     * The same with the buffer mode {@code zeroCopy} asks for: ON is zero copy (attach fails where the kernel
     * cannot), OFF is ublk user copy, whose payload the links send from and receive into user memory.
     */
    DeviceOptions options(ExternalNbdServer s, int queues, Duration ioTimeout, Duration reconnectTimeout,
                          ZeroCopy zeroCopy) {
        return options(s, queues, CONNECT_TIMEOUT, ioTimeout, reconnectTimeout, zeroCopy);
    }

    /** The same with a connect timeout of its own (it bounds each reconnect attempt too). */
    DeviceOptions options(ExternalNbdServer s, int queues, Duration connectTimeout, Duration ioTimeout,
                          Duration reconnectTimeout, ZeroCopy zeroCopy) {
        return new DeviceOptions("fault", s.socketAddress(), s.uri().exportName(), queues, 32, zeroCopy,
                false, -1, connectTimeout, ioTimeout, null).withReconnectTimeout(reconnectTimeout);
    }

    /** The process-wide payload counters now: {@link #assertPayloadMovedAs} compares against them. */
    record PayloadBytes(long fixed, long memory) {
        static PayloadBytes now() {
            return new PayloadBytes(DataPathStats.fixedBufferBytes(), DataPathStats.userMemoryBytes());
        }
    }

    /**
     * The device runs in the buffer mode {@code zeroCopy} asked for, and every payload byte since {@code before}
     * took that mode's path: a fault test that silently ran the other mode would prove nothing about this one.
     */
    void assertPayloadMovedAs(ZeroCopy zeroCopy, PayloadBytes before) {
        boolean copy = zeroCopy == ZeroCopy.OFF;
        assertEquals(copy ? BufferMode.USER_COPY : BufferMode.ZERO_COPY, device.mode(), "the device's buffer mode");
        long fixed = DataPathStats.fixedBufferBytes() - before.fixed();
        long memory = DataPathStats.userMemoryBytes() - before.memory();
        String moved = fixed + " payload bytes through fixed buffers, " + memory + " through user memory";
        assertTrue(copy ? fixed == 0 && memory > 0 : fixed > 0 && memory == 0, moved);
    }

    /** The device's per-queue link states, for assertion messages. */
    String links() {
        return device == null ? "(no device)" : device.linkStates().toString();
    }
}
