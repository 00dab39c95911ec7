package io.nbdgate.ublk;

import static org.junit.jupiter.api.Assertions.*;

import io.nbdgate.ublk.target.MemoryTarget;
import io.netty.channel.MultiThreadIoEventLoopGroup;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Random;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.params.ParameterizedTest;
import java.util.stream.Stream;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * One write and read-back through a memory device per buffer mode and command set (batch and per tag),
 * checked against the RAM itself.
 */
@Tag("ublk")
class SmokeGuestTest {
    static Stream<Arguments> modes() {
        return Stream.of(BufferMode.values()).flatMap(m -> Stream.of(Arguments.of(m, true), Arguments.of(m, false)));
    }

    @ParameterizedTest(name = "{0}, batch {1}")
    @MethodSource("modes")
    void directWriteLandsInRamAndReadsBack(BufferMode mode, boolean batch) throws Exception {
        long size = 16 << 20;
        MultiThreadIoEventLoopGroup group = Guest.loops(1);
        try (ControlDevice ctl = ControlDevice.open();
             MemoryTarget ram = MemoryTarget.create(size);
             UblkDevice dev = UblkDevice.create(ctl, DeviceSpec.of(1, 32).withMode(mode).withBatchIo(batch),
                     DeviceParams.disk(size, 512 * 1024))) {
            assertTrue(ctl.features().has(UblkAbi.F_BATCH_IO), "the guest's 7.2 kernel has UBLK_F_BATCH_IO");
            assertEquals(batch, dev.batchIo(), "the device runs the command set asked for");
            dev.start(Guest.list(group), q -> ram);
            assertEquals("LIVE", dev.info().stateName());
            byte[] data = new byte[1 << 20];
            new Random(42).nextBytes(data);
            Path src = Files.write(Path.of("/tmp/smoke-src"), data);
            Guest.run("dd", "if=" + src, "of=" + dev.blockDevice(), "bs=64k", "seek=3", "oflag=direct", "status=none");
            byte[] inRam = ram.contents().asSlice(3 * 65536, data.length).toArray(ValueLayout.JAVA_BYTE);
            assertArrayEquals(data, inRam, "bytes in the RAM disk differ from what dd wrote");
            Guest.run("dd", "if=" + dev.blockDevice(), "of=/tmp/smoke-back", "bs=64k", "skip=3", "count=16",
                    "iflag=direct", "status=none");
            assertArrayEquals(data, Files.readAllBytes(Path.of("/tmp/smoke-back")));
            assertTrue(dev.requestsServed() > 0);
            assertEquals(0, dev.eventsOffLoop());
            if (batch) {
                // dd with O_DIRECT has one request in flight: each pass commits one, without a completion.
                assertTrue(dev.loneCommits() >= dev.requestsServed() / 2, dev.loneCommits() + " of "
                        + dev.requestsServed() + " requests committed alone, without a completion");
            } else {
                assertEquals(0, dev.loneCommits(), "per-tag commands have no lone commits");
            }
        } finally {
            group.shutdownGracefully().sync();
        }
        assertEquals(java.util.List.of(), Guest.ublkNodes());
    }
}
