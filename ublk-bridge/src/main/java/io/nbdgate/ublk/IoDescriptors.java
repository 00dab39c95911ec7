package io.nbdgate.ublk;

import static io.nbdgate.ublk.UblkAbi.*;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;

import io.nbdgate.uring.LinuxCalls;
import io.nbdgate.uring.UringException;
import java.lang.foreign.MemorySegment;

/** The read-only array of struct ublksrv_io_desc of one queue, mmapped from /dev/ublkcN. */
final class IoDescriptors implements AutoCloseable {
    private static final long PAGE = 4096;
    /** Each queue's array starts at a fixed stride sized for the deepest possible queue. */
    private static final long QUEUE_STRIDE = roundUp(UBLK_MAX_QUEUE_DEPTH * IO_DESC.byteSize());

    private final MemorySegment descs;

    IoDescriptors(int charFd, int qid, int depth) throws UringException {
        descs = LinuxCalls.mmap(charFd, qid * QUEUE_STRIDE, roundUp(depth * IO_DESC.byteSize()), false);
    }

    private static long roundUp(long n) {
        return (n + PAGE - 1) & -PAGE;
    }

    private static long at(int tag) {
        return tag * IO_DESC.byteSize();
    }

    int opFlags(int tag) { return descs.get(JAVA_INT, at(tag) + ID_OP_FLAGS); }
    int nrSectors(int tag) { return descs.get(JAVA_INT, at(tag) + ID_NR_SECTORS); }
    long startSector(int tag) { return descs.get(JAVA_LONG, at(tag) + ID_START_SECTOR); }
    long addr(int tag) { return descs.get(JAVA_LONG, at(tag) + ID_ADDR); }

    @Override
    public void close() {
        LinuxCalls.munmap(descs);
    }
}
