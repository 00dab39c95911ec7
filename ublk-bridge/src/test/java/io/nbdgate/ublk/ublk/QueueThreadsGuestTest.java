package io.nbdgate.ublk.ublk;

import static org.junit.jupiter.api.Assertions.*;

import io.nbdgate.ublk.target.MemoryTarget;
import io.netty.channel.IoEventLoop;
import io.netty.channel.MultiThreadIoEventLoopGroup;
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
}
