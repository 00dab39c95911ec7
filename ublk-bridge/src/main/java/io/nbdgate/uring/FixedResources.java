package io.nbdgate.uring;

import static io.nbdgate.uring.IoUringAbi.*;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;

/**
 * io_uring_register(2) on any ring fd, ours or Netty's. On a SINGLE_ISSUER|DEFER_TASKRUN ring
 * these calls must run on the ring's submitter thread (the kernel answers EEXIST otherwise).
 */
public final class FixedResources {
    private FixedResources() {
    }

    static long register(String what, int ringFd, int opcode, MemorySegment arg, int nrArgs) throws UringException {
        return LinuxCalls.check("io_uring_register " + what, LinuxCalls.SYS_IO_URING_REGISTER, ringFd, opcode,
                arg == null ? 0 : arg.address(), nrArgs, 0, 0);
    }

    /** An empty fixed-buffer table of {@code slots} entries (REGISTER_BUFFERS2 with RSRC_REGISTER_SPARSE). */
    public static void registerSparseBuffers(int ringFd, int slots) throws UringException {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment reg = a.allocate(RSRC_REGISTER);
            reg.set(JAVA_INT, 0, slots);
            reg.set(JAVA_INT, 4, RSRC_REGISTER_SPARSE);
            register("BUFFERS2(sparse)", ringFd, REGISTER_BUFFERS2, reg, (int) RSRC_REGISTER.byteSize());
        }
    }

    /** Installs (or with a NULL segment clears) one slot of the fixed-buffer table. */
    public static void updateBuffer(int ringFd, int index, MemorySegment buffer) throws UringException {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment iov = a.allocate(IOVEC);
            iov.set(JAVA_LONG, 0, buffer.address());
            iov.set(JAVA_LONG, 8, buffer.byteSize());
            MemorySegment up = a.allocate(RSRC_UPDATE2);
            up.set(JAVA_INT, 0, index);
            up.set(JAVA_LONG, 8, iov.address());
            up.set(JAVA_INT, 24, 1);
            register("BUFFERS_UPDATE", ringFd, REGISTER_BUFFERS_UPDATE, up, (int) RSRC_UPDATE2.byteSize());
        }
    }

    public static void unregisterBuffers(int ringFd) throws UringException {
        register("UNREGISTER_BUFFERS", ringFd, UNREGISTER_BUFFERS, null, 0);
    }

    /** A fixed-file table holding {@code fds}; -1 entries are empty slots. */
    public static void registerFiles(int ringFd, int... fds) throws UringException {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment arr = a.allocateFrom(JAVA_INT, fds);
            register("FILES", ringFd, REGISTER_FILES, arr, fds.length);
        }
    }

    /** An empty fixed-file table of {@code slots} entries (REGISTER_FILES2 with RSRC_REGISTER_SPARSE). */
    public static void registerSparseFiles(int ringFd, int slots) throws UringException {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment reg = a.allocate(RSRC_REGISTER);
            reg.set(JAVA_INT, 0, slots);
            reg.set(JAVA_INT, 4, RSRC_REGISTER_SPARSE);
            register("FILES2(sparse)", ringFd, REGISTER_FILES2, reg, (int) RSRC_REGISTER.byteSize());
        }
    }

    /** Puts {@code fd} (or -1 to clear) into slot {@code index} of the fixed-file table. */
    public static void updateFile(int ringFd, int index, int fd) throws UringException {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment fds = a.allocateFrom(JAVA_INT, fd);
            MemorySegment up = a.allocate(RSRC_UPDATE2);
            up.set(JAVA_INT, 0, index);
            up.set(JAVA_LONG, 8, fds.address());
            up.set(JAVA_INT, 24, 1);
            register("FILES_UPDATE2", ringFd, REGISTER_FILES_UPDATE2, up, (int) RSRC_UPDATE2.byteSize());
        }
    }

    public static OpcodeProbe probe(int ringFd) throws UringException {
        int ops = 256;
        try (Arena a = Arena.ofConfined()) {
            MemorySegment p = a.allocate(PROBE.byteSize() + ops * PROBE_OP.byteSize(), 8);
            register("PROBE", ringFd, REGISTER_PROBE, p, ops);
            return OpcodeProbe.parse(p);
        }
    }
}
