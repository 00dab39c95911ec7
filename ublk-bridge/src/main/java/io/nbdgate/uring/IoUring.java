package io.nbdgate.uring;

import static io.nbdgate.uring.IoUringAbi.*;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;

/**
 * An io_uring instance created through FFM: rings mapped once at setup, SQEs prepared in place,
 * completions handed out as primitives. Not thread-safe: one thread owns a ring (SINGLE_ISSUER fits).
 */
public final class IoUring implements AutoCloseable {
    private final int fd;
    private final int flags;
    private final int features;
    private final MemorySegment sqRing;
    private final MemorySegment cqRing;
    private final MemorySegment sqeArray;
    private final SubmissionQueue sq;
    private final CompletionQueue cq;
    private final Arena arena = Arena.ofShared();
    private final MemorySegment getEventsArg;
    private final MemorySegment timespec;
    private boolean closed;

    private IoUring(int fd, MemorySegment params) throws UringException {
        this.fd = fd;
        this.flags = params.get(JAVA_INT, P_FLAGS);
        this.features = params.get(JAVA_INT, P_FEATURES);
        int sqEntries = params.get(JAVA_INT, P_SQ_ENTRIES);
        int cqEntries = params.get(JAVA_INT, P_CQ_ENTRIES);
        int sqeSize = (flags & SETUP_SQE128) != 0 ? 128 : 64;
        int cqeSize = (flags & SETUP_CQE32) != 0 ? 32 : 16;
        long sqSize = params.get(JAVA_INT, P_SQ_OFF + SQ_RO_ARRAY) + 4L * sqEntries;
        long cqSize = params.get(JAVA_INT, P_CQ_OFF + CQ_RO_CQES) + (long) cqEntries * cqeSize;
        try {
            if ((features & FEAT_SINGLE_MMAP) != 0) {
                sqRing = LinuxCalls.mmap(fd, OFF_SQ_RING, Math.max(sqSize, cqSize), true);
                cqRing = sqRing;
            } else {
                sqRing = LinuxCalls.mmap(fd, OFF_SQ_RING, sqSize, true);
                cqRing = LinuxCalls.mmap(fd, OFF_CQ_RING, cqSize, true);
            }
            sqeArray = LinuxCalls.mmap(fd, OFF_SQES, (long) sqEntries * sqeSize, true);
        } catch (UringException e) {
            LinuxCalls.close(fd);
            throw e;
        }
        sq = new SubmissionQueue(sqRing, sqeArray, params, sqeSize);
        cq = new CompletionQueue(cqRing, params, cqeSize);
        getEventsArg = arena.allocate(GETEVENTS_ARG);
        timespec = arena.allocate(TIMESPEC);
        getEventsArg.set(JAVA_LONG, 16, timespec.address());
    }

    /** Creates a ring with {@code entries} SQEs and the given IORING_SETUP_* flags. */
    public static IoUring setup(int entries, int setupFlags) throws UringException {
        return setup(entries, 0, setupFlags);
    }

    /** Like {@link #setup(int, int)}; a non-zero {@code cqEntries} sizes the completion queue. */
    public static IoUring setup(int entries, int cqEntries, int setupFlags) throws UringException {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment params = a.allocate(PARAMS);
            int f = setupFlags;
            if (cqEntries > 0) {
                f |= SETUP_CQSIZE;
                params.set(JAVA_INT, P_CQ_ENTRIES, cqEntries);
            }
            params.set(JAVA_INT, P_FLAGS, f);
            int fd = (int) LinuxCalls.check("io_uring_setup", LinuxCalls.SYS_IO_URING_SETUP, entries,
                    params.address(), 0, 0, 0, 0);
            return new IoUring(fd, params);
        }
    }

    public int fd() { return fd; }
    public int setupFlags() { return flags; }
    public int features() { return features; }

    /** A zeroed SQE; submits pending entries first if the queue is full. */
    public Sqe nextSqe() throws UringException {
        Sqe sqe = sq.next();
        while (sqe == null) {
            submit();
            sqe = sq.next();
        }
        return sqe;
    }

    /** Submits prepared SQEs without waiting; returns how many the kernel took. */
    public int submit() throws UringException {
        return enter(sq.flush(), 0, false, 0);
    }

    /** Submits and waits until at least {@code minComplete} completions are ready. */
    public int submitAndWait(int minComplete) throws UringException {
        return enter(sq.flush(), minComplete, false, 0);
    }

    /**
     * Submits and waits for {@code minComplete} completions or until {@code timeoutNanos} pass
     * (IORING_ENTER_EXT_ARG); a timeout is not an error, callers look at the completion queue.
     */
    public int submitAndWait(int minComplete, long timeoutNanos) throws UringException {
        return enter(sq.flush(), minComplete, true, timeoutNanos);
    }

    private int enter(int toSubmit, int minComplete, boolean timed, long timeoutNanos) throws UringException {
        int enterFlags = minComplete > 0 || (flags & SETUP_DEFER_TASKRUN) != 0 ? ENTER_GETEVENTS : 0;
        long arg = 0;
        long argSize = 0;
        if (timed) {
            timespec.set(JAVA_LONG, 0, timeoutNanos / 1_000_000_000L);
            timespec.set(JAVA_LONG, 8, timeoutNanos % 1_000_000_000L);
            enterFlags |= ENTER_EXT_ARG;
            arg = getEventsArg.address();
            argSize = GETEVENTS_ARG.byteSize();
        }
        while (true) {
            long r = LinuxCalls.raw(LinuxCalls.SYS_IO_URING_ENTER, fd, toSubmit, minComplete, enterFlags, arg, argSize);
            if (r >= 0) {
                return (int) r;
            }
            int errno = (int) -r;
            if (errno == Errno.ETIME || errno == Errno.EBUSY || errno == Errno.EAGAIN) {
                return 0;
            }
            if (errno != Errno.EINTR) {
                throw new UringException("io_uring_enter", errno);
            }
        }
    }

    /** Reaps every ready completion into {@code handler}; returns how many. */
    public int drain(CompletionHandler handler) {
        return cq.drain(handler);
    }

    public int readyCompletions() {
        return cq.ready();
    }

    public int sqEntries() { return sq.entries(); }
    public int cqEntries() { return cq.entries(); }

    public void registerSparseBuffers(int slots) throws UringException {
        FixedResources.registerSparseBuffers(fd, slots);
    }

    public void updateBuffer(int index, MemorySegment buffer) throws UringException {
        FixedResources.updateBuffer(fd, index, buffer);
    }

    public void registerFiles(int... fds) throws UringException {
        FixedResources.registerFiles(fd, fds);
    }

    public OpcodeProbe probe() throws UringException {
        return FixedResources.probe(fd);
    }

    @Override
    public void close() {
        if (closed) {
            return;
        }
        closed = true;
        LinuxCalls.munmap(sqeArray);
        if (cqRing != sqRing) {
            LinuxCalls.munmap(cqRing);
        }
        LinuxCalls.munmap(sqRing);
        LinuxCalls.close(fd);
        arena.close();
    }
}
