package io.nbdgate.gateway.link;

import java.util.concurrent.atomic.LongAdder;

/**
 * Where request payload went between socket and request, process-wide: through io_uring fixed buffers
 * (the kernel's request pages; zero copy) or through user memory (user-copy and copy modes).
 */
public final class DataPathStats {
    private static final LongAdder FIXED = new LongAdder();
    private static final LongAdder MEMORY = new LongAdder();
    private static final LongAdder ZERO_COPY_SENT = new LongAdder();
    private static final LongAdder STAGED = new LongAdder();
    private static final LongAdder FIXED_RX = new LongAdder();

    private DataPathStats() {
    }

    static void moved(boolean fixedBuffer, long bytes) {
        (fixedBuffer ? FIXED : MEMORY).add(bytes);
    }

    static void staged(long bytes) {
        STAGED.add(bytes);
    }

    /**
     * Read reply bytes that arrived together with reply headers and were copied into place from the
     * connection's receive buffer (by the kernel through ublk user copy for fixed buffers; Java never
     * touches them there). Not counted in {@link #fixedBufferBytes()}.
     */
    public static long stagedBytes() {
        return STAGED.sum();
    }

    static void receivedIntoFixedRx(long bytes) {
        FIXED_RX.add(bytes);
    }

    /**
     * Reply bytes (headers, and data that is then staged) received into the connections' own receive buffers
     * through their fixed-buffer slots: the kernel's memcpy into registered pages rather than copy_to_user.
     * 0 on kernels before 7.2, where RECV takes no fixed buffer.
     */
    public static long fixedRxBytes() {
        return FIXED_RX.sum();
    }

    static void sentZeroCopy(long bytes) {
        ZERO_COPY_SENT.add(bytes);
    }

    /** Payload bytes sent with SEND_ZC (a subset of {@link #fixedBufferBytes()}). */
    public static long zeroCopySentBytes() {
        return ZERO_COPY_SENT.sum();
    }

    /** Payload bytes sent from or received into fixed buffers. */
    public static long fixedBufferBytes() {
        return FIXED.sum();
    }

    /** Payload bytes sent from or received into user memory. */
    public static long userMemoryBytes() {
        return MEMORY.sum();
    }
}
