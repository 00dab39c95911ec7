package io.nbdgate.gateway.device;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.nbdgate.gateway.config.StructuredReplies;
import io.nbdgate.gateway.config.ZeroCopy;
import io.nbdgate.gateway.link.NbdConnectionException;
import io.nbdgate.protocol.ExportInfo;
import io.nbdgate.protocol.TransmissionFlag;
import io.nbdgate.protocol.TransmissionMode;
import io.nbdgate.ublk.BufferMode;
import io.nbdgate.ublk.DeviceParams;
import io.nbdgate.ublk.UblkAbi;
import io.nbdgate.ublk.UblkFeatures;
import java.net.InetSocketAddress;
import java.net.UnixDomainSocketAddress;
import java.time.Duration;
import org.junit.jupiter.api.Test;

/** The rules that turn an export and a kernel into a device: pure, so each is checked here. */
class DeviceRulesTest {
    private static final UblkFeatures KERNEL_7_2 = new UblkFeatures(0xfffffL);
    private static final UblkFeatures NO_AUTO_BUF_REG = new UblkFeatures(0xfffffL & ~UblkAbi.F_AUTO_BUF_REG);

    private static int flags(TransmissionFlag... fs) {
        int f = TransmissionFlag.HAS_FLAGS.mask();
        for (TransmissionFlag t : fs) {
            f |= t.mask();
        }
        return f;
    }

    private static ExportInfo export(long size, int flags, int min, int preferred, long maxPayload) {
        return new ExportInfo("e", "", size, flags, min, preferred, maxPayload, true, TransmissionMode.STRUCTURED);
    }

    private static DeviceOptions options(int queues) {
        return new DeviceOptions("t", new InetSocketAddress("127.0.0.1", 1), "e", queues, 32, ZeroCopy.AUTO, false,
                -1, Duration.ofSeconds(1), Duration.ofSeconds(1), null);
    }

    /** auto: structured replies from a server on another host only; on and off are taken as they are. */
    @Test
    void structuredRepliesAreAskedForOnlyAcrossTheNetworkByDefault() {
        DeviceOptions loopback = options(1);
        DeviceOptions unix = new DeviceOptions("t", UnixDomainSocketAddress.of("/run/nbd.sock"), "e", 1, 32,
                ZeroCopy.AUTO, false, -1, Duration.ofSeconds(1), Duration.ofSeconds(1), null);
        // TEST-NET-1 (RFC 5737): an address of no interface here; nothing is sent to it.
        DeviceOptions remote = new DeviceOptions("t", new InetSocketAddress("192.0.2.1", 10809), "e", 1, 32,
                ZeroCopy.AUTO, false, -1, Duration.ofSeconds(1), Duration.ofSeconds(1), null);
        assertEquals(StructuredReplies.AUTO, loopback.structuredReplies());
        assertFalse(loopback.asksForStructuredReplies(), "loopback server");
        assertFalse(unix.asksForStructuredReplies(), "unix socket");
        assertTrue(remote.asksForStructuredReplies(), "server on another host");
        assertTrue(loopback.withStructuredReplies(StructuredReplies.ON).asksForStructuredReplies());
        assertFalse(remote.withStructuredReplies(StructuredReplies.OFF).asksForStructuredReplies());
    }

    @Test
    void paramsFollowTheExportsFlags() {
        ExportInfo e = export((1L << 30) + 1000, flags(TransmissionFlag.SEND_FLUSH, TransmissionFlag.SEND_FUA,
                TransmissionFlag.SEND_TRIM, TransmissionFlag.SEND_WRITE_ZEROES, TransmissionFlag.ROTATIONAL), 512, 4096,
                32L << 20);
        DeviceParams p = DeviceGeometry.params(e, BufferMode.USER_COPY, false);
        assertEquals((1L << 30) + 512, p.sizeBytes(), "a trailing partial block is dropped");
        assertEquals(512, p.logicalBlockSize());
        assertEquals(4096, p.physicalBlockSize());
        assertEquals((512 << 10) >> 9, p.maxSectors(), "capped at 512 KiB per request: memory per tag");
        assertEquals((1 << 20) >> 9, DeviceGeometry.params(e, BufferMode.ZERO_COPY, false).maxSectors(),
                "zero copy keeps no per-tag memory: 1 MiB requests, one NBD request per 1 MiB I/O");
        assertEquals(512 << 10, DeviceGeometry.maxIoBytes(e, BufferMode.COPY));
        assertTrue(p.volatileCache() && p.fua() && p.rotational() && !p.readOnly());
        assertTrue(p.maxDiscardSectors() > 0 && p.maxWriteZeroesSectors() > 0);
    }

    @Test
    void missingCapabilitiesAreNotAdvertisedToTheKernel() {
        ExportInfo e = export(1L << 30, flags(TransmissionFlag.READ_ONLY, TransmissionFlag.SEND_TRIM), 512, 512,
                64 << 10);
        DeviceParams p = DeviceGeometry.params(e, BufferMode.ZERO_COPY, false);
        assertTrue(p.readOnly());
        assertFalse(p.volatileCache() || p.fua());
        assertEquals(0, p.maxDiscardSectors(), "no discard on a read-only export");
        assertEquals(0, p.maxWriteZeroesSectors());
        assertEquals((64 << 10) >> 9, p.maxSectors(), "the server's maximum payload is smaller than ours");
        assertTrue(DeviceGeometry.params(export(1L << 30, flags(), 512, 512, 1 << 20), BufferMode.COPY, true).readOnly(),
                "--read-only forces it");
    }

    @Test
    void impossibleBlockSizesAreOneLineErrors() {
        assertThrows(IllegalArgumentException.class, () -> DeviceGeometry.params(export(1L << 30, flags(), 65536,
                65536, 1 << 20), BufferMode.COPY, false));
        assertThrows(IllegalArgumentException.class, () -> DeviceGeometry.maxIoBytes(export(1L << 30, flags(), 512,
                512, 1024), BufferMode.ZERO_COPY));
    }

    @Test
    void zeroCopyNeedsAutoBufRegAndRecvOnFixedBuffers() throws Exception {
        assertEquals(BufferMode.ZERO_COPY, Attacher.chooseMode(ZeroCopy.AUTO, KERNEL_7_2, true));
        assertEquals(BufferMode.USER_COPY, Attacher.chooseMode(ZeroCopy.AUTO, KERNEL_7_2, false));
        assertEquals(BufferMode.USER_COPY, Attacher.chooseMode(ZeroCopy.AUTO, NO_AUTO_BUF_REG, true));
        assertEquals(BufferMode.USER_COPY, Attacher.chooseMode(ZeroCopy.OFF, KERNEL_7_2, true));
        assertEquals(BufferMode.COPY, Attacher.chooseMode(ZeroCopy.AUTO, new UblkFeatures(UblkAbi.F_CMD_IOCTL_ENCODE),
                false));
        NbdConnectionException e = assertThrows(NbdConnectionException.class,
                () -> Attacher.chooseMode(ZeroCopy.ON, KERNEL_7_2, false));
        assertTrue(e.getMessage().contains("before Linux 7.2"), e.getMessage());
        e = assertThrows(NbdConnectionException.class, () -> Attacher.chooseMode(ZeroCopy.ON, NO_AUTO_BUF_REG, true));
        assertTrue(e.getMessage().contains("AUTO_BUF_REG"), e.getMessage());
    }

    @Test
    void severalQueuesOnlyWithMultiConn() {
        ExportInfo multi = export(1L << 30, flags(TransmissionFlag.CAN_MULTI_CONN), 512, 4096, 1 << 20);
        ExportInfo single = export(1L << 30, flags(), 512, 4096, 1 << 20);
        assertEquals(4, Attacher.queueCount(options(4), multi));
        assertEquals(1, Attacher.queueCount(options(4), single));
        assertEquals(1, Attacher.queueCount(options(0), single));
        assertEquals(Math.min(4, Runtime.getRuntime().availableProcessors()), Attacher.queueCount(options(0), multi));
    }

    /** A user other than root gets copy mode and no recovery; asking for more is refused, not downgraded. */
    @Test
    void anUnprivilegedDeviceHasCopyModeAndNoRecoveryAndRefusesZeroCopy() throws Exception {
        DeviceOptions auto = options(1).withRecovery(true);
        DeviceOptions u = Attacher.unprivileged(auto);
        assertEquals(BufferMode.COPY, u.forcedMode());
        assertFalse(u.recovery());
        DeviceOptions on = new DeviceOptions("t", new InetSocketAddress("127.0.0.1", 1), "e", 1, 32, ZeroCopy.ON,
                false, -1, Duration.ofSeconds(1), Duration.ofSeconds(1), null);
        assertTrue(assertThrows(NbdConnectionException.class, () -> Attacher.unprivileged(on)).getMessage()
                .contains("zero copy needs root"));
        assertTrue(assertThrows(NbdConnectionException.class,
                () -> Attacher.unprivileged(options(1).withMode(BufferMode.USER_COPY))).getMessage()
                .contains("buffer mode user-copy needs root"));
        assertEquals(BufferMode.COPY, Attacher.unprivileged(options(1).withMode(BufferMode.COPY)).forcedMode());
    }
}
