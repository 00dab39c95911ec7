package io.nbdgate.ublk.target;

import io.nbdgate.ublk.BufferMode;
import io.nbdgate.ublk.IoRequest;
import io.nbdgate.ublk.JavaCopies;
import io.nbdgate.ublk.UblkAbi;
import io.nbdgate.uring.LinuxCalls;
import io.nbdgate.uring.UringException;
import java.lang.foreign.MemorySegment;

/**
 * A RAM disk. The RAM is a memfd mapped into the JVM: in copy mode Java copies between it and the
 * request buffer (counted in {@link JavaCopies}); in the other modes the ring reads and writes the
 * memfd like a file, so zero-copy stays zero-copy.
 */
public final class MemoryTarget extends FileTarget {
    private final MemorySegment ram;

    private MemoryTarget(int memfd, MemorySegment ram) {
        super(memfd, true);
        this.ram = ram;
    }

    public static MemoryTarget create(long sizeBytes) throws UringException {
        int memfd = LinuxCalls.memfdCreate("nbdgate-ram");
        try {
            LinuxCalls.ftruncate(memfd, sizeBytes);
            return new MemoryTarget(memfd, LinuxCalls.mmap(memfd, 0, sizeBytes, true));
        } catch (UringException e) {
            LinuxCalls.close(memfd);
            throw e;
        }
    }

    /** The disk's contents, for checks. */
    public MemorySegment contents() {
        return ram;
    }

    @Override
    public void serve(IoRequest req) {
        int op = req.op();
        if (req.mode() == BufferMode.COPY && (op == UblkAbi.IO_OP_READ || op == UblkAbi.IO_OP_WRITE)) {
            if (op == UblkAbi.IO_OP_READ) {
                MemorySegment.copy(ram, req.offset(), req.buffer(), 0, req.length());
            } else {
                MemorySegment.copy(req.buffer(), 0, ram, req.offset(), req.length());
            }
            JavaCopies.add(req.length());
            req.complete(req.length());
            return;
        }
        super.serve(req);
    }

    @Override
    void closeResources() {
        LinuxCalls.munmap(ram);
    }
}
