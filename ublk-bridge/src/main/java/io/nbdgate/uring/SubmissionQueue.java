package io.nbdgate.uring;

import static io.nbdgate.uring.IoUringAbi.*;
import static java.lang.foreign.ValueLayout.JAVA_INT;

import java.lang.foreign.MemorySegment;
import java.lang.invoke.VarHandle;

/**
 * The submission side of a ring: the only place (with {@link CompletionQueue}) that orders memory
 * against the kernel. We own the tail, the kernel owns the head (io_uring.h / io_uring(7) "ring").
 */
final class SubmissionQueue {
    private static final VarHandle INT = JAVA_INT.varHandle();

    private final MemorySegment kHead;
    private final MemorySegment kTail;
    private final MemorySegment kFlags;
    private final int mask;
    private final int entries;
    private final Sqe[] sqes;
    private int tail;

    SubmissionQueue(MemorySegment ring, MemorySegment sqeArray, MemorySegment params, int sqeSize) {
        long off = P_SQ_OFF;
        kHead = ring.asSlice(params.get(JAVA_INT, off + RO_HEAD), 4);
        kTail = ring.asSlice(params.get(JAVA_INT, off + RO_TAIL), 4);
        kFlags = ring.asSlice(params.get(JAVA_INT, off + SQ_RO_FLAGS), 4);
        mask = ring.get(JAVA_INT, params.get(JAVA_INT, off + RO_RING_MASK));
        entries = ring.get(JAVA_INT, params.get(JAVA_INT, off + RO_RING_ENTRIES));
        // Identity index array written once, as liburing does: slot i always names SQE i.
        MemorySegment array = ring.asSlice(params.get(JAVA_INT, off + SQ_RO_ARRAY), 4L * entries);
        for (int i = 0; i < entries; i++) {
            array.setAtIndex(JAVA_INT, i, i);
        }
        sqes = new Sqe[entries];
        for (int i = 0; i < entries; i++) {
            sqes[i] = new Sqe(sqeArray.asSlice((long) i * sqeSize, sqeSize));
        }
        tail = (int) INT.getAcquire(kTail, 0L);
    }

    /** A zeroed entry, or null when the kernel has not consumed enough entries yet. */
    Sqe next() {
        int head = (int) INT.getAcquire(kHead, 0L);
        if (tail - head >= entries) {
            return null;
        }
        Sqe sqe = sqes[tail & mask];
        tail++;
        sqe.clear();
        return sqe;
    }

    /** Publishes prepared entries (release: the kernel must see the SQE bytes before the tail). */
    int flush() {
        INT.setRelease(kTail, 0L, tail);
        return tail - (int) INT.getAcquire(kHead, 0L);
    }

    int flags() {
        return (int) INT.getAcquire(kFlags, 0L);
    }

    int entries() {
        return entries;
    }
}
