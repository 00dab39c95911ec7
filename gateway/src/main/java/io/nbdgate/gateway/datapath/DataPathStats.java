package io.nbdgate.gateway.datapath;

import java.util.concurrent.atomic.LongAdder;

/**
 * Where request payload went between socket and request, process-wide: through io_uring fixed buffers
 * (the kernel's request pages; zero copy) or through user memory (user-copy and copy modes).
 */
public final class DataPathStats {
    private static final LongAdder FIXED = new LongAdder();
    private static final LongAdder MEMORY = new LongAdder();

    private DataPathStats() {
    }

    static void moved(boolean fixedBuffer, long bytes) {
        (fixedBuffer ? FIXED : MEMORY).add(bytes);
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
