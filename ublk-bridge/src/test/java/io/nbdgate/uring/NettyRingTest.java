package io.nbdgate.uring;

import static io.nbdgate.uring.IoUringAbi.*;
import static org.junit.jupiter.api.Assertions.*;

import io.netty.channel.IoEvent;
import io.netty.channel.IoEventLoop;
import io.netty.channel.IoRegistration;
import io.netty.channel.MultiThreadIoEventLoopGroup;
import io.netty.channel.uring.IoUringIoEvent;
import io.netty.channel.uring.IoUringIoHandle;
import io.netty.channel.uring.IoUringIoHandler;
import io.netty.channel.uring.IoUringIoOps;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Random;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The Netty route the queue engine depends on, checked on the host kernel's io_uring. */
class NettyRingTest {
    @TempDir
    Path dir;

    /** Completes one future per submitted op with its result and the thread it arrived on. */
    static final class Probe implements IoUringIoHandle {
        volatile CompletableFuture<int[]> next = new CompletableFuture<>();
        volatile Thread thread;

        @Override
        public void handle(IoRegistration registration, IoEvent event) {
            thread = Thread.currentThread();
            IoUringIoEvent e = (IoUringIoEvent) event;
            next.complete(new int[] {e.res(), e.data()});
        }

        @Override
        public void close() {
        }
    }

    @Test
    void internalsMatchAndFixedBuffersWorkThroughNettysRing() throws Exception {
        assertNull(NettyRing.SELF_CHECK);
        MultiThreadIoEventLoopGroup group = new MultiThreadIoEventLoopGroup(1, IoUringIoHandler.newFactory());
        IoEventLoop loop = (IoEventLoop) group.next();
        Path f = dir.resolve("data");
        byte[] expected = new byte[4096];
        new Random(3).nextBytes(expected);
        int fd = LinuxCalls.open(f.toString(), LinuxCalls.O_RDWR | LinuxCalls.O_CREAT, 0644);
        try (Arena arena = Arena.ofShared()) {
            MemorySegment buf = arena.allocate(4096, 4096).copyFrom(MemorySegment.ofArray(expected));
            Probe probe = new Probe();
            IoRegistration reg = loop.register(probe).get(5, TimeUnit.SECONDS);
            // Registration on the loop thread (SINGLE_ISSUER); slot 9 of the sparse table gets our buffer.
            loop.submit(() -> {
                NettyRing ring = NettyRing.of(reg.attachment(), 64);
                assertTrue(ring.fd() > 0);
                int base = ring.buffers().allocate(16);
                FixedResources.updateBuffer(ring.fd(), base + 9, buf);
                reg.submit(new IoUringIoOps(OP_WRITE_FIXED, (byte) 0, (short) 0, fd, 0, buf.address(), 4096, 0,
                        (short) 7, (short) (base + 9), (short) 0, 0, 0L));
                return null;
            }).get(5, TimeUnit.SECONDS);
            int[] r = probe.next.get(5, TimeUnit.SECONDS);
            assertEquals(4096, r[0], "WRITE_FIXED result");
            assertEquals(7, r[1]);
            assertTrue(loop.inEventLoop(probe.thread), "completion off the loop thread");
            assertArrayEquals(expected, Files.readAllBytes(f));

            // The SQE patch: bytes 56-63 of the entry just enqueued, guarded by opcode and bytes 48-55.
            probe.next = new CompletableFuture<>();
            loop.submit(() -> {
                NettyRing ring = NettyRing.of(reg.attachment(), 64);
                reg.submit(new IoUringIoOps(OP_NOP, (byte) 0, (short) 0, -1, 0, 0, 0, 0, (short) 8, (short) 0,
                        (short) 0, 0, 0x1234L));
                ring.writeLastSqeTail(OP_NOP, 0x1234L, 0xabcdL);
                assertThrows(IllegalStateException.class, () -> ring.writeLastSqeTail(OP_NOP, 0x9999L, 1));
                return null;
            }).get(5, TimeUnit.SECONDS);
            assertEquals(0, probe.next.get(5, TimeUnit.SECONDS)[0]);
            reg.cancel();
        } finally {
            LinuxCalls.close(fd);
            group.shutdownGracefully(0, 1, TimeUnit.SECONDS).sync();
        }
    }

    /**
     * Operations without a completion on success report a failure to the user whose slot they carry, and to
     * nobody once that user detached. (That a successful one posts nothing is LoneWriteGuestTest's: a plain SEND
     * from a fixed buffer needs Linux 7.2.)
     */
    @Test
    void silentFailuresGoToTheSlotThatSentThem() throws Exception {
        MultiThreadIoEventLoopGroup group = new MultiThreadIoEventLoopGroup(1, IoUringIoHandler.newFactory());
        IoEventLoop loop = (IoEventLoop) group.next();
        int file = LinuxCalls.open(dir.resolve("not-a-socket").toString(), LinuxCalls.O_RDWR | LinuxCalls.O_CREAT,
                0644);
        try (Arena arena = Arena.ofShared()) {
            MemorySegment buf = arena.allocate(64);
            Probe probe = new Probe();
            IoRegistration reg = loop.register(probe).get(5, TimeUnit.SECONDS);
            CompletableFuture<int[]> first = new CompletableFuture<>();
            CompletableFuture<int[]> second = new CompletableFuture<>();
            int[] slots = loop.submit(() -> {
                SilentOps ops = NettyRing.of(reg.attachment(), 64).silentOps(loop);
                int a = ops.attach((slot, res) -> first.complete(new int[] {slot, res}));
                int b = ops.attach((slot, res) -> second.complete(new int[] {slot, res}));
                // A SEND on a file fails (ENOTSOCK): its failure goes to b alone.
                ops.send((byte) 0, file, buf.address(), 64, LinuxCalls.MSG_DONTWAIT, -1, SilentOps.attachedData(b));
                return new int[] {a, b};
            }).get(5, TimeUnit.SECONDS);
            assertArrayEquals(new int[] {slots[1], -Errno.ENOTSOCK}, second.get(5, TimeUnit.SECONDS));
            assertNotEquals(slots[0], slots[1]);
            loop.submit(() -> {
                SilentOps ops = NettyRing.of(reg.attachment(), 64).silentOps(loop);
                ops.detach(slots[0]);
                ops.send((byte) 0, file, buf.address(), 64, LinuxCalls.MSG_DONTWAIT, -1,
                        SilentOps.attachedData(slots[0]));
                // A NOP through the probe behind it: once it is in, the failure before it has been handled.
                reg.submit(new IoUringIoOps(OP_NOP, (byte) 0, (short) 0, -1, 0, 0, 0, 0, (short) 1, (short) 0,
                        (short) 0, 0, 0L));
                return null;
            }).get(5, TimeUnit.SECONDS);
            assertEquals(0, probe.next.get(5, TimeUnit.SECONDS)[0]);
            assertFalse(first.isDone(), "a detached slot's failure reached its old listener");
            reg.cancel();
        } finally {
            LinuxCalls.close(file);
            group.shutdownGracefully(0, 1, TimeUnit.SECONDS).sync();
        }
    }
}
