package io.nbdgate.uring;

import static io.nbdgate.uring.IoUringAbi.*;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;

import java.lang.foreign.MemorySegment;
import java.lang.invoke.VarHandle;

/** The completion side of a ring: the kernel owns the tail, we own the head. */
final class CompletionQueue {
    private static final VarHandle INT = JAVA_INT.varHandle();

    private final MemorySegment kHead;
    private final MemorySegment kTail;
    private final MemorySegment cqes;
    private final int mask;
    private final int entries;
    private final int cqeSize;

    CompletionQueue(MemorySegment ring, MemorySegment params, int cqeSize) {
        long off = P_CQ_OFF;
        kHead = ring.asSlice(params.get(JAVA_INT, off + RO_HEAD), 4);
        kTail = ring.asSlice(params.get(JAVA_INT, off + RO_TAIL), 4);
        mask = ring.get(JAVA_INT, params.get(JAVA_INT, off + RO_RING_MASK));
        entries = ring.get(JAVA_INT, params.get(JAVA_INT, off + RO_RING_ENTRIES));
        this.cqeSize = cqeSize;
        cqes = ring.asSlice(params.get(JAVA_INT, off + CQ_RO_CQES), (long) entries * cqeSize);
    }

    /** Hands every available completion to the handler; acquire on the tail, release on the head. */
    int drain(CompletionHandler handler) {
        int head = (int) INT.get(kHead, 0L);
        int tail = (int) INT.getAcquire(kTail, 0L);
        int n = 0;
        while (head != tail) {
            long base = (long) (head & mask) * cqeSize;
            long userData = cqes.get(JAVA_LONG, base + CQE_USER_DATA);
            int res = cqes.get(JAVA_INT, base + CQE_RES);
            int flags = cqes.get(JAVA_INT, base + CQE_FLAGS);
            head++;
            n++;
            // Release the slot before the handler runs: it may submit and wait again.
            INT.setRelease(kHead, 0L, head);
            handler.complete(userData, res, flags);
            if (head == tail) {
                tail = (int) INT.getAcquire(kTail, 0L);
            }
        }
        return n;
    }

    int ready() {
        return (int) INT.getAcquire(kTail, 0L) - (int) INT.get(kHead, 0L);
    }

    int entries() {
        return entries;
    }
}
