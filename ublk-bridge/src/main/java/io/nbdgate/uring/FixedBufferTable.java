package io.nbdgate.uring;

import java.util.BitSet;

/**
 * The sparse fixed-buffer table of one ring, handed out in ranges so that several ublk queues on
 * one event loop use disjoint indexes. Ring-thread only.
 */
public final class FixedBufferTable {
    private final int ringFd;
    private final int slots;
    private final BitSet used = new BitSet();
    private boolean registered;

    FixedBufferTable(int ringFd, int slots) {
        this.ringFd = ringFd;
        this.slots = slots;
    }

    /** Reserves {@code n} consecutive indexes; registers the sparse table the first time. */
    public int allocate(int n) throws UringException {
        if (!registered) {
            FixedResources.registerSparseBuffers(ringFd, slots);
            registered = true;
        }
        int start = 0;
        while (start + n <= slots) {
            int busy = used.nextSetBit(start);
            if (busy < 0 || busy >= start + n) {
                used.set(start, start + n);
                return start;
            }
            start = busy + 1;
        }
        throw new IllegalStateException("fixed-buffer table of " + slots + " slots has no room for " + n);
    }

    public void release(int start, int n) {
        used.clear(start, start + n);
    }

    public int slots() {
        return slots;
    }
}
