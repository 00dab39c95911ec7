package io.nbdgate.gateway.device;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import io.nbdgate.gateway.config.DeviceConfig;
import io.nbdgate.gateway.config.ZeroCopy;
import io.nbdgate.gateway.datapath.DataPathStats;
import io.nbdgate.gateway.testsupport.ExternalNbdServer;
import io.nbdgate.ublk.ublk.BufferMode;
import io.nbdgate.ublk.ublk.JavaCopies;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.net.SocketAddress;
import java.net.UnixDomainSocketAddress;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
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

    /** TCP is the main path (SEND_ZC); a unix socket takes plain SEND from the fixed buffer. */
    private NbdDevice attach(BufferMode mode, int queues, boolean tcp) throws Exception {
        server = tcp ? ExternalNbdServer.nbdkit(dir, List.of(), "memory", String.valueOf(EXPORT_SIZE))
                : ExternalNbdServer.nbdkitUnix(dir, List.of(), "memory", String.valueOf(EXPORT_SIZE));
        SocketAddress address = tcp ? new InetSocketAddress("127.0.0.1", server.port())
                : UnixDomainSocketAddress.of(server.uri().socketPath());
        NbdDevice.Options o = new NbdDevice.Options("guest-test", address, "", queues, 32, ZeroCopy.AUTO, false, -1, Duration.ofSeconds(10), Duration.ofSeconds(60), mode);
        attach(o);
        assertEquals(mode, device.mode());
        return device;
    }

    @ParameterizedTest
    @EnumSource(BufferMode.class)
    void fioVerifiesAndEverythingTheDeviceWroteIsOnTheServer(BufferMode mode) throws Exception {
        attach(mode, 2, true);
        assertEquals(2, device.queues(), "nbdkit advertises CAN_MULTI_CONN, so two queues");
        String dev = device.blockDevice();
        long fixedBefore = DataPathStats.fixedBufferBytes();
        long memoryBefore = DataPathStats.userMemoryBytes();
        long copiedBefore = JavaCopies.bytes();
        fio(dev, "randwrite", "4k", 32, "48M");
        fio(dev, "write", "1M", 32, "96M");
        long viaFixed = DataPathStats.fixedBufferBytes() - fixedBefore;
        long viaMemory = DataPathStats.userMemoryBytes() - memoryBefore;
        System.out.printf("%s: %d MiB via fixed buffers, %d MiB via user memory, %d bytes copied by Java%n",
                mode.label(), viaFixed >> 20, viaMemory >> 20, JavaCopies.bytes() - copiedBefore);
        if (mode == BufferMode.ZERO_COPY) {
            assertEquals(0, viaMemory, "zero copy: no payload byte may pass through user memory");
            assertTrue(viaFixed >= 200L << 20, "fio's writes and verify reads moved through fixed buffers: " + viaFixed);
            assertEquals(0, JavaCopies.bytes() - copiedBefore, "zero copy: Java copied data bytes");
        } else {
            assertEquals(0, viaFixed, mode.label() + " uses no fixed buffers");
            assertTrue(viaMemory >= 200L << 20, "payload through the tag's memory: " + viaMemory);
        }
        // The device's content, then the server's, must be identical.
        Path fromDevice = dir.resolve("device.img");
        run("dd", "if=" + dev, "of=" + fromDevice, "bs=1M", "iflag=direct", "status=none");
        Path fromServer = dir.resolve("server.img");
        run("nbdcopy", server.uri().toString(), fromServer.toString());
        assertEquals(sha256(fromServer), sha256(fromDevice), "server and device differ");
        assertEquals(EXPORT_SIZE, Files.size(fromServer));
    }

    @ParameterizedTest
    @EnumSource(BufferMode.class)
    void ext4SurvivesUnmountAndMount(BufferMode mode) throws Exception {
        attach(mode, 1, false);
        String dev = device.blockDevice();
        run("mkfs.ext4", "-q", "-F", dev);
        Path mnt = dir.resolve("mnt");
        Files.createDirectories(mnt);
        run("mount", dev, mnt.toString());
        try {
            run("sh", "-c", "for i in 1 2 3 4 5 6 7 8; do head -c $((i * 1048576 + 12345)) /dev/urandom > "
                    + mnt + "/file$i; done; sync");
            String before = run("sh", "-c", "cd " + mnt + " && sha256sum file*");
            run("umount", mnt.toString());
            run("mount", dev, mnt.toString());
            String after = run("sh", "-c", "cd " + mnt + " && sha256sum file*");
            assertEquals(before, after);
            assertEquals(8, before.lines().count());
        } finally {
            run("sh", "-c", "umount " + mnt + " 2>/dev/null; true");
        }
        run("e2fsck", "-f", "-n", dev);
    }

    private static void fio(String dev, String rw, String bs, int depth, String size) throws Exception {
        run("fio", "--name=verify", "--filename=" + dev, "--rw=" + rw, "--bs=" + bs, "--iodepth=" + depth,
                "--ioengine=io_uring", "--direct=1", "--size=" + size, "--verify=crc32c", "--verify_fatal=1",
                "--do_verify=1", "--verify_state_save=0", "--output-format=terse");
    }

    private static String sha256(Path p) throws Exception {
        return run("sha256sum", p.toString()).split(" ")[0];
    }

    private static String run(String... cmd) throws IOException, InterruptedException {
        Process p = new ProcessBuilder(new ArrayList<>(List.of(cmd))).redirectErrorStream(true).start();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        if (!p.waitFor(10, TimeUnit.MINUTES)) {
            p.destroyForcibly();
            fail(String.join(" ", cmd) + " did not finish");
        }
        if (p.exitValue() != 0) {
            fail(String.join(" ", cmd) + " exited " + p.exitValue() + ":\n" + out);
        }
        return out;
    }
}
