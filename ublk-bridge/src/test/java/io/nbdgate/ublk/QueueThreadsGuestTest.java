package io.nbdgate.ublk;

import static org.junit.jupiter.api.Assertions.*;

import io.nbdgate.ublk.target.MemoryTarget;
import io.nbdgate.uring.IoWorkers;
import io.netty.channel.IoEventLoop;
import io.netty.channel.MultiThreadIoEventLoopGroup;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

/** Each queue's commands are issued and completed on its own event-loop thread; no thread is added. */
@Tag("ublk")
class QueueThreadsGuestTest {
    @Test
    void queuesRunOnTheirLoopsOnly() throws Exception {
        long size = 32L << 20;
        MultiThreadIoEventLoopGroup group = Guest.loops(2);
        List<IoEventLoop> loops = Guest.list(group);
        // Make the loops start their threads before we count threads.
        for (IoEventLoop l : loops) {
            l.submit(() -> { }).sync();
        }
        try (ControlDevice ctl = ControlDevice.open(); MemoryTarget ram = MemoryTarget.create(size)) {
            Set<Thread> before = new HashSet<>(Thread.getAllStackTraces().keySet());
            try (UblkDevice dev = UblkDevice.create(ctl, DeviceSpec.of(2, 16), DeviceParams.disk(size, 512 * 1024))) {
                dev.start(loops, q -> ram);
                Guest.fio(dev.blockDevice(), "randwrite", "4k", size, "--numjobs=2", "--offset_increment=16M",
                        "--size=16M");
                List<Thread> qt = dev.queueThreads();
                assertEquals(2, qt.size());
                assertTrue(loops.get(0).inEventLoop(qt.get(0)), "queue 0 ran on " + qt.get(0));
                assertTrue(loops.get(1).inEventLoop(qt.get(1)), "queue 1 ran on " + qt.get(1));
                assertNotSame(qt.get(0), qt.get(1));
                assertEquals(0, dev.eventsOffLoop());
                assertTrue(dev.requestsServed() > 1000, "served " + dev.requestsServed());
                Set<Thread> added = new HashSet<>(Thread.getAllStackTraces().keySet());
                added.removeAll(before);
                added.removeIf(t -> t.getName().equals("process reaper") || !t.isAlive());
                assertEquals(Set.of(), added, "the queues needed extra threads");
            }
        } finally {
            group.shutdownGracefully().sync();
        }
    }

    /**
     * User copy moves every request's data with READ and WRITE on /dev/ublkcN. They must run inline on the queue's
     * loop: a copy handed to an io-wq worker costs a thread switch and another wake-up per request. The target
     * copies in Java, so the copies through /dev/ublkcN are the only data operations on the ring.
     */
    @Test
    void userCopyRunsInlineOnTheLoop() throws Exception {
        long size = 32L << 20;
        MultiThreadIoEventLoopGroup group = Guest.loops(1);
        List<IoEventLoop> loops = Guest.list(group);
        try (Arena arena = Arena.ofShared(); ControlDevice ctl = ControlDevice.open()) {
            MemorySegment disk = arena.allocate(size, 4096);
            Target javaRam = new Target() {
                @Override
                public void serve(IoRequest req) {
                    switch (req.op()) {
                        case UblkAbi.IO_OP_READ -> MemorySegment.copy(disk, req.offset(), req.buffer(), 0, req.length());
                        case UblkAbi.IO_OP_WRITE -> MemorySegment.copy(req.buffer(), 0, disk, req.offset(), req.length());
                        default -> { }
                    }
                    req.complete(req.op() == UblkAbi.IO_OP_READ || req.op() == UblkAbi.IO_OP_WRITE ? req.length() : 0);
                }

                @Override
                public void onIo(IoRequest req, int res) {
                }
            };
            try (UblkDevice dev = UblkDevice.create(ctl, DeviceSpec.of(1, 32).withMode(BufferMode.USER_COPY),
                    DeviceParams.disk(size, 512 * 1024))) {
                dev.start(loops, q -> javaRam);
                assertEquals(BufferMode.USER_COPY, dev.mode());
                Guest.fio(dev.blockDevice(), "randwrite", "4k", 16L << 20);
                assertTrue(dev.requestsServed() > 4000, "served " + dev.requestsServed());
                assertEquals(0, IoWorkers.ownedBy("multiThreadIoEv"), "user-copy READ/WRITE went to io-wq workers");
            }
        } finally {
            group.shutdownGracefully().sync();
        }
    }
}
