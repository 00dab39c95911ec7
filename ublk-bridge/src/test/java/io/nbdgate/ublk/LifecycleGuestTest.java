package io.nbdgate.ublk;

import static org.junit.jupiter.api.Assertions.*;

import io.nbdgate.ublk.target.MemoryTarget;
import io.netty.channel.MultiThreadIoEventLoopGroup;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

/** Device lifecycle through the control device: 20 cycles, ids, params, resize; nothing left behind. */
@Tag("ublk")
class LifecycleGuestTest {
    @Test
    void twentyAddStartStopDeleteCyclesLeaveNoDevice() throws Exception {
        long size = 8L << 20;
        MultiThreadIoEventLoopGroup group = Guest.loops(2);
        try (ControlDevice ctl = ControlDevice.open()) {
            for (int i = 0; i < 20; i++) {
                BufferMode mode = BufferMode.values()[i % 3];
                MemoryTarget ram = MemoryTarget.create(size); // the device closes it
                try (UblkDevice dev = UblkDevice.create(ctl, DeviceSpec.of(2, 8).withMode(mode),
                        DeviceParams.disk(size, 128 * 1024))) {
                    dev.start(Guest.list(group), q -> ram);
                    assertTrue(Files.exists(Path.of(dev.blockDevice())), dev.blockDevice());
                    assertEquals("LIVE", dev.info().stateName());
                    Guest.run("dd", "if=" + dev.blockDevice(), "of=/dev/null", "bs=64k", "count=4", "iflag=direct",
                            "status=none");
                }
            }
        } finally {
            group.shutdownGracefully().sync();
        }
        assertEquals(List.of(), Guest.ublkNodes());
    }

    @Test
    void givenIdParamsInfoAndResize() throws Exception {
        long size = 16L << 20;
        MultiThreadIoEventLoopGroup group = Guest.loops(1);
        try (ControlDevice ctl = ControlDevice.open(); MemoryTarget ram = MemoryTarget.create(2 * size)) {
            DeviceParams params = DeviceParams.disk(size, 256 * 1024).withSegments(4095, 65536, 32);
            try (UblkDevice dev = UblkDevice.create(ctl, DeviceSpec.of(1, 16).withId(7), params)) {
                assertEquals(7, dev.id());
                DeviceInfo info = dev.info();
                assertEquals("DEAD", info.stateName()); // added, not started yet
                assertEquals(16, info.queueDepth());
                DeviceParams back = dev.params();
                assertEquals(size, back.sizeBytes());
                assertEquals(512, back.logicalBlockSize());
                assertEquals(4096, back.physicalBlockSize());
                assertTrue(back.volatileCache() && back.fua());
                assertEquals(65536, back.maxSegmentSize());
                dev.start(Guest.list(group), q -> ram);
                assertEquals("LIVE", dev.info().stateName());
                assertNotNull(dev.params().devt(), "devt is reported once started");
                assertEquals("65536", Files.readString(Path.of("/sys/block/ublkb7/queue/max_segment_size")).trim());
                assertEquals("write back", Files.readString(Path.of("/sys/block/ublkb7/queue/write_cache")).trim());
                ctl.updateSize(7, 2 * size);
                assertEquals(2 * size / 512,
                        Long.parseLong(Files.readString(Path.of("/sys/block/ublkb7/size")).trim()));
            }
        } finally {
            group.shutdownGracefully().sync();
        }
        assertEquals(List.of(), Guest.ublkNodes());
    }
}
