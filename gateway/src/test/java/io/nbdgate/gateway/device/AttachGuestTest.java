package io.nbdgate.gateway.device;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.nbdgate.gateway.config.DeviceConfig;
import io.nbdgate.gateway.config.StructuredReplies;
import io.nbdgate.gateway.config.ZeroCopy;
import io.nbdgate.gateway.link.DataPathStats;
import io.nbdgate.gateway.testsupport.ExternalNbdServer;
import io.nbdgate.protocol.TransmissionMode;
import io.nbdgate.ublk.BufferMode;
import io.nbdgate.ublk.JavaCopies;
import io.nbdgate.uring.IoWorkers;
import java.net.InetSocketAddress;
import java.net.SocketAddress;
import java.net.UnixDomainSocketAddress;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

/**
 * The product end to end on a real ublk kernel: a real NBD server (nbdkit), nbdgate's device in each
 * buffer mode, real fio with verification, a real ext4 file system, and the server's copy of the data
 * read back with nbdcopy.
 */
class AttachGuestTest extends DeviceGuestTestBase {
    private static final long EXPORT_SIZE = 128L << 20;

    @TempDir
    Path dir;

    private ExternalNbdServer server;


    @Override
    protected void afterDeviceClosed() {
        if (server != null) {
            server.close();
        }
    }

    /**
     * TCP to nbdkit on this host: plain SEND from the fixed buffers unless strict (SEND_ZC's pages would be copied
     * on local delivery anyway); a unix socket takes plain SEND too.
     */
    private NbdDevice attach(BufferMode mode, int queues, boolean tcp) throws Exception {
        return attach(mode, queues, tcp, DeviceConfig.DEFAULT_SEND_ZC_MIN, DeviceConfig.DEFAULT_STAGE_READS_MAX);
    }

    private NbdDevice attach(BufferMode mode, int queues, boolean tcp, int sendZcMin, int stageReadsMax)
            throws Exception {
        return attach(mode, queues, tcp, sendZcMin, stageReadsMax, true);
    }

    private NbdDevice attach(BufferMode mode, int queues, boolean tcp, int sendZcMin, int stageReadsMax,
            boolean batchIo) throws Exception {
        return attach(mode, queues, tcp, sendZcMin, stageReadsMax, batchIo, StructuredReplies.AUTO);
    }

    private NbdDevice attach(BufferMode mode, int queues, boolean tcp, int sendZcMin, int stageReadsMax,
            boolean batchIo, StructuredReplies structuredReplies) throws Exception {
        server = tcp ? ExternalNbdServer.nbdkit(dir, List.of(), "memory", String.valueOf(EXPORT_SIZE))
                : ExternalNbdServer.nbdkitUnix(dir, List.of(), "memory", String.valueOf(EXPORT_SIZE));
        SocketAddress address = tcp ? new InetSocketAddress("127.0.0.1", server.port())
                : UnixDomainSocketAddress.of(server.uri().socketPath());
        DeviceOptions o = new DeviceOptions("guest-test", address, "", queues, 32, ZeroCopy.AUTO, false, -1,
                Duration.ofSeconds(10), Duration.ofSeconds(60), mode, sendZcMin, stageReadsMax).withBatchIo(batchIo)
                .withStructuredReplies(structuredReplies);
        attach(o);
        assertEquals(mode, device.mode());
        return device;
    }

    @ParameterizedTest
    @EnumSource(BufferMode.class)
    void fioVerifiesAndEverythingTheDeviceWroteIsOnTheServer(BufferMode mode) throws Exception {
        attach(mode, 2, true);
        assertEquals(2, device.queues(), "nbdkit advertises CAN_MULTI_CONN, so two queues");
        assertTrue(device.batchIo(), "the guest's 7.2 kernel has UBLK_F_BATCH_IO, and it is the default");
        assertEquals(TransmissionMode.SIMPLE, device.export().mode(),
                "structured-replies auto: a server on this host gets simple replies");
        String dev = device.blockDevice();
        long fixedBefore = DataPathStats.fixedBufferBytes();
        long memoryBefore = DataPathStats.userMemoryBytes();
        long copiedBefore = JavaCopies.bytes();
        long zcBefore = DataPathStats.zeroCopySentBytes();
        long stagedBefore = DataPathStats.stagedBytes();
        long fixedRxBefore = DataPathStats.fixedRxBytes();
        GuestProcesses.fioVerify(dev, "randwrite", "4k", "48M");
        long zcSmall = DataPathStats.zeroCopySentBytes() - zcBefore;
        GuestProcesses.fioVerify(dev, "write", "1M", "96M");
        long zcLarge = DataPathStats.zeroCopySentBytes() - zcBefore - zcSmall;
        long viaFixed = DataPathStats.fixedBufferBytes() - fixedBefore;
        long viaMemory = DataPathStats.userMemoryBytes() - memoryBefore;
        long staged = DataPathStats.stagedBytes() - stagedBefore;
        long fixedRx = DataPathStats.fixedRxBytes() - fixedRxBefore;
        System.out.printf("%s: %d MiB via fixed buffers, %d MiB via user memory, %d MiB staged, %d KiB of replies "
                        + "received into the registered rx, %d bytes copied by Java%n", mode.label(), viaFixed >> 20,
                viaMemory >> 20, staged >> 20, fixedRx >> 10, JavaCopies.bytes() - copiedBefore);
        // Every mode's connections receive reply headers (and staged data) into their registered rx: 7.2 takes
        // RECV with FIXED_BUF. fio's verify reads 4 KiB blocks at QD32, so staged data arrives there too.
        assertTrue(fixedRx >= staged && fixedRx > 0, "reply bytes through the registered rx: " + fixedRx
                + " (staged " + staged + ")");
        // Staged replies and user copies are WRITEs and READs on /dev/ublkcN: they must run inline on the queue's
        // loop, never in an io-wq worker (a thread switch and another wake-up per request).
        assertEquals(0, IoWorkers.ownedBy("vert.x-eventloo"), "an event loop handed ring operations to io-wq");
        if (mode == BufferMode.ZERO_COPY) {
            assertEquals(0, viaMemory, "zero copy: no payload byte may pass through user memory");
            assertTrue(viaFixed >= 200L << 20, "fio's writes and verify reads moved through fixed buffers: " + viaFixed);
            assertEquals(0, JavaCopies.bytes() - copiedBefore, "zero copy: Java copied data bytes");
            // nbdkit is on this host: every payload goes out with SEND from its fixed buffer, none with SEND_ZC
            // (strictZeroCopy... below proves SEND_ZC itself).
            assertEquals(0, zcSmall + zcLarge, "SEND_ZC to a server on this host");
            // fio's verify reads 4 KiB blocks at QD32: replies arrive in bunches and are staged, the kernel
            // writing them into the request pages through ublk user copy (fio's crc32c check proves the bytes).
            assertTrue(staged > 0, "no 4 KiB read reply was staged");
        } else {
            assertEquals(0, viaFixed, mode.label() + " uses no fixed buffers");
            assertEquals(0, zcSmall + zcLarge, mode.label() + " has no pages to send zero-copy");
            assertTrue(viaMemory >= 200L << 20, "payload through the tag's memory: " + viaMemory);
        }
        // The device's content, then the server's, must be identical.
        Path fromDevice = dir.resolve("device.img");
        GuestProcesses.run("dd", "if=" + dev, "of=" + fromDevice, "bs=1M", "iflag=direct", "status=none");
        Path fromServer = dir.resolve("server.img");
        GuestProcesses.run("nbdcopy", server.uri().toString(), fromServer.toString());
        assertEquals(sha256(fromServer), sha256(fromDevice), "server and device differ");
        assertEquals(EXPORT_SIZE, Files.size(fromServer));
    }

    /**
     * Strict zero copy (send-zc-min 0, stage-reads-max 0): every write payload leaves with SEND_ZC straight from
     * the request's pages, even to a server on this host, and every read reply is received straight into them.
     */
    @Test
    void strictZeroCopySendsEveryPayloadWithSendZcAndStagesNothing() throws Exception {
        attach(BufferMode.ZERO_COPY, 2, true, 0, 0);
        String dev = device.blockDevice();
        long zcBefore = DataPathStats.zeroCopySentBytes();
        long stagedBefore = DataPathStats.stagedBytes();
        long memoryBefore = DataPathStats.userMemoryBytes();
        long copiedBefore = JavaCopies.bytes();
        GuestProcesses.fioVerify(dev, "randwrite", "4k", "16M");
        long zcSmall = DataPathStats.zeroCopySentBytes() - zcBefore;
        GuestProcesses.fioVerify(dev, "write", "1M", "64M");
        long zcLarge = DataPathStats.zeroCopySentBytes() - zcBefore - zcSmall;
        assertTrue(zcSmall >= 16L << 20, "4 KiB writes go out with SEND_ZC when strict: " + zcSmall);
        assertTrue(zcLarge >= 64L << 20, "1 MiB writes go out with SEND_ZC: " + zcLarge);
        assertEquals(0, DataPathStats.stagedBytes() - stagedBefore, "stage-reads-max 0: no reply staged");
        assertEquals(0, DataPathStats.userMemoryBytes() - memoryBefore, "zero copy: no payload byte in user memory");
        assertEquals(0, JavaCopies.bytes() - copiedBefore, "zero copy: Java copied data bytes");
    }

    /**
     * Structured replies asked for (the default for a server on another host): read data arrives in OFFSET_DATA
     * chunks, 4 KiB ones staged from the header buffer at the chunk's offset, 1 MiB ones received straight into
     * the request's pages; fio's crc32c verify checks every byte.
     */
    @Test
    void structuredRepliesServeTheZeroCopyPath() throws Exception {
        attach(BufferMode.ZERO_COPY, 2, true, DeviceConfig.DEFAULT_SEND_ZC_MIN, DeviceConfig.DEFAULT_STAGE_READS_MAX,
                true, StructuredReplies.ON);
        assertEquals(TransmissionMode.STRUCTURED, device.export().mode(), "nbdkit 1.32 has structured replies");
        long stagedBefore = DataPathStats.stagedBytes();
        long fixedBefore = DataPathStats.fixedBufferBytes();
        long copiedBefore = JavaCopies.bytes();
        GuestProcesses.fioVerify(device.blockDevice(), "randwrite", "4k", "16M");
        GuestProcesses.fioVerify(device.blockDevice(), "write", "1M", "32M");
        assertTrue(DataPathStats.stagedBytes() - stagedBefore > 0, "no 4 KiB structured read reply was staged");
        assertTrue(DataPathStats.fixedBufferBytes() - fixedBefore >= 64L << 20,
                "1 MiB writes and their verify reads move through fixed buffers");
        assertEquals(0, JavaCopies.bytes() - copiedBefore, "zero copy: Java copied data bytes");
    }

    /** batch-io false: the per-request ublk commands (what kernels before 7.0 have) serve the same data path. */
    @Test
    void perRequestCommandsServeTheZeroCopyPath() throws Exception {
        attach(BufferMode.ZERO_COPY, 2, true, DeviceConfig.DEFAULT_SEND_ZC_MIN, DeviceConfig.DEFAULT_STAGE_READS_MAX,
                false);
        assertFalse(device.batchIo(), "batch-io false must keep the per-request commands");
        long copiedBefore = JavaCopies.bytes();
        GuestProcesses.fioVerify(device.blockDevice(), "randwrite", "4k", "16M");
        GuestProcesses.fioVerify(device.blockDevice(), "write", "1M", "32M");
        assertEquals(0, JavaCopies.bytes() - copiedBefore, "zero copy: Java copied data bytes");
    }

    @ParameterizedTest
    @EnumSource(BufferMode.class)
    void ext4SurvivesUnmountAndMount(BufferMode mode) throws Exception {
        attach(mode, 1, false);
        GuestProcesses.ext4RoundTrip(device.blockDevice(), dir.resolve("mnt"));
    }

    private static String sha256(Path p) throws Exception {
        return GuestProcesses.run("sha256sum", p.toString()).split(" ")[0];
    }
}
