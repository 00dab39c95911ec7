package io.nbdgate.uring;

import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;
import static java.lang.foreign.ValueLayout.JAVA_SHORT;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.invoke.VarHandle;

/**
 * A provided-buffer ring (IORING_REGISTER_PBUF_RING) of equal buffers, for a multishot operation that
 * picks its own buffer (IOSQE_BUFFER_SELECT) and names it in the CQE flags. Every buffer is handed to
 * the kernel at registration; {@link #recycle} gives one back once its contents were read. Ring-thread
 * only; the memory belongs to the caller's arena and must outlive {@link #unregister}.
 */
public final class ProvidedBufferRing {
    private static final int BUF_SIZE = 16; // struct io_uring_buf: addr u64, len u32, bid u16, resv u16
    private static final long TAIL = 14;    // the ring's tail shares the first entry's resv field

    private final int ringFd;
    private final int group;
    private final int entries;
    private final int bufferBytes;
    private final MemorySegment ring;
    private final MemorySegment buffers;
    private int tail;
    private boolean registered;

    /** Registers {@code entries} (a power of two) buffers of {@code bufferBytes} as buffer group {@code group}. */
    public ProvidedBufferRing(int ringFd, int group, int entries, int bufferBytes, Arena arena) throws UringException {
        if (Integer.bitCount(entries) != 1 || entries > 32768) {
            throw new IllegalArgumentException("ring entries must be a power of two up to 32768: " + entries);
        }
        this.ringFd = ringFd;
        this.group = group;
        this.entries = entries;
        this.bufferBytes = bufferBytes;
        this.ring = arena.allocate((long) entries * BUF_SIZE, 4096);
        this.buffers = arena.allocate((long) entries * bufferBytes, 64);
        try (Arena a = Arena.ofConfined()) {
            MemorySegment reg = a.allocate(40, 8);
            reg.set(JAVA_LONG, 0, ring.address());
            reg.set(JAVA_INT, 8, entries);
            reg.set(JAVA_SHORT, 12, (short) group);
            FixedResources.register("PBUF_RING", ringFd, IoUringAbi.REGISTER_PBUF_RING, reg, 1);
        }
        registered = true;
        for (int bid = 0; bid < entries; bid++) {
            recycle(bid);
        }
    }

    public int group() {
        return group;
    }

    /** The buffer with id {@code bid}, as the kernel filled it. */
    public MemorySegment buffer(int bid) {
        return buffers.asSlice((long) bid * bufferBytes, bufferBytes);
    }

    /** The {@code i}-th u16 the kernel wrote into buffer {@code bid}. */
    public short readShort(int bid, int i) {
        return buffers.get(JAVA_SHORT, (long) bid * bufferBytes + 2L * i);
    }

    /** Gives buffer {@code bid} back to the kernel. */
    public void recycle(int bid) {
        long e = (long) (tail & (entries - 1)) * BUF_SIZE;
        ring.set(JAVA_LONG, e, buffers.address() + (long) bid * bufferBytes);
        ring.set(JAVA_INT, e + 8, bufferBytes);
        ring.set(JAVA_SHORT, e + 12, (short) bid);
        tail = (tail + 1) & 0xffff;
        VarHandle.releaseFence(); // the entry must be visible before the tail that publishes it
        ring.set(JAVA_SHORT, TAIL, (short) tail);
    }

    /** Takes the ring back from the kernel; the operation using it must have ended. */
    public void unregister() throws UringException {
        if (!registered) {
            return;
        }
        registered = false;
        try (Arena a = Arena.ofConfined()) {
            MemorySegment reg = a.allocate(40, 8);
            reg.set(JAVA_SHORT, 12, (short) group);
            FixedResources.register("UNREGISTER_PBUF_RING", ringFd, IoUringAbi.UNREGISTER_PBUF_RING, reg, 1);
        }
    }
}
