package io.nbdgate.gateway.nbd.server;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.StructLayout;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;
import java.lang.invoke.VarHandle;
import java.nio.file.Path;

/**
 * The few file calls Java's FileChannel lacks (fallocate hole punching and zeroing, SEEK_DATA /
 * SEEK_HOLE, fadvise), made through FFM on a second descriptor of the same file: fallocate and
 * lseek act on the inode, so they need not share FileChannel's descriptor.
 */
final class LibcFile implements AutoCloseable {
    private static final int O_RDONLY = 0;
    private static final int O_RDWR = 2;
    private static final int O_CLOEXEC = 0x80000;
    private static final int FALLOC_FL_KEEP_SIZE = 0x01;
    private static final int FALLOC_FL_PUNCH_HOLE = 0x02;
    private static final int FALLOC_FL_ZERO_RANGE = 0x10;
    private static final int SEEK_DATA = 3;
    private static final int SEEK_HOLE = 4;
    private static final int POSIX_FADV_WILLNEED = 3;
    static final int ENXIO = 6;
    static final int EOPNOTSUPP = 95;

    private static final Linker LINKER = Linker.nativeLinker();
    private static final StructLayout CALL_STATE = Linker.Option.captureStateLayout();
    private static final VarHandle ERRNO = CALL_STATE.varHandle(StructLayout.PathElement.groupElement("errno"));
    private static final Linker.Option CAPTURE_ERRNO = Linker.Option.captureCallState("errno");
    private static final MethodHandle OPEN = downcall("open",
            FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.ADDRESS, ValueLayout.JAVA_INT), true);
    private static final MethodHandle CLOSE = downcall("close",
            FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.JAVA_INT), false);
    private static final MethodHandle FALLOCATE = downcall("fallocate",
            FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.JAVA_INT, ValueLayout.JAVA_INT,
                    ValueLayout.JAVA_LONG, ValueLayout.JAVA_LONG), true);
    private static final MethodHandle LSEEK = downcall("lseek",
            FunctionDescriptor.of(ValueLayout.JAVA_LONG, ValueLayout.JAVA_INT, ValueLayout.JAVA_LONG, ValueLayout.JAVA_INT), true);
    // posix_fadvise returns the error number instead of setting errno.
    private static final MethodHandle FADVISE = downcall("posix_fadvise",
            FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.JAVA_INT, ValueLayout.JAVA_LONG,
                    ValueLayout.JAVA_LONG, ValueLayout.JAVA_INT), false);

    private static MethodHandle downcall(String name, FunctionDescriptor fd, boolean errno) {
        MemorySegment symbol = LINKER.defaultLookup().find(name)
                .orElseThrow(() -> new UnsatisfiedLinkError("libc has no " + name));
        return errno ? LINKER.downcallHandle(symbol, fd, CAPTURE_ERRNO) : LINKER.downcallHandle(symbol, fd);
    }

    /** A failed libc call, with its errno so callers can tell "not supported" from real errors. */
    static final class LibcException extends IOException {
        final int errno;

        LibcException(String call, Path path, int errno) {
            super(call + " on " + path + " failed: errno " + errno);
            this.errno = errno;
        }
    }

    private final Path path;
    private final int fd;
    private boolean closed;

    private LibcFile(Path path, int fd) {
        this.path = path;
        this.fd = fd;
    }

    static LibcFile open(Path path, boolean readOnly) throws IOException {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment state = arena.allocate(CALL_STATE);
            int fd = (int) OPEN.invokeExact(state, arena.allocateFrom(path.toString()),
                    (readOnly ? O_RDONLY : O_RDWR) | O_CLOEXEC);
            if (fd < 0) throw new LibcException("open", path, errno(state));
            return new LibcFile(path, fd);
        } catch (IOException e) {
            throw e;
        } catch (Throwable t) {
            throw new IOException("open " + path + " through FFM failed", t);
        }
    }

    /** Deallocates the range; the file keeps its size and the range reads as zeroes. */
    void punchHole(long offset, long length) throws IOException {
        fallocate(FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, offset, length);
    }

    /** Zeroes the range without writing data, keeping it allocated. */
    void zeroRange(long offset, long length) throws IOException {
        fallocate(FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE, offset, length);
    }

    private void fallocate(int mode, long offset, long length) throws IOException {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment state = arena.allocate(CALL_STATE);
            int rc = (int) FALLOCATE.invokeExact(state, fd, mode, offset, length);
            if (rc != 0) throw new LibcException("fallocate(mode=0x" + Integer.toHexString(mode) + ")", path, errno(state));
        } catch (IOException e) {
            throw e;
        } catch (Throwable t) {
            throw new IOException("fallocate through FFM failed", t);
        }
    }

    /** The first offset at or after {@code from} holding data, or -1 when only a hole follows. */
    long nextData(long from) throws IOException {
        return seek(from, SEEK_DATA);
    }

    /** The first offset at or after {@code from} in a hole (the end of file counts as one). */
    long nextHole(long from) throws IOException {
        return seek(from, SEEK_HOLE);
    }

    private long seek(long from, int whence) throws IOException {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment state = arena.allocate(CALL_STATE);
            long r = (long) LSEEK.invokeExact(state, fd, from, whence);
            if (r >= 0) return r;
            int errno = errno(state);
            if (errno == ENXIO) return -1;
            throw new LibcException("lseek(whence=" + whence + ")", path, errno);
        } catch (IOException e) {
            throw e;
        } catch (Throwable t) {
            throw new IOException("lseek through FFM failed", t);
        }
    }

    /** Asks the kernel to start reading the range into the page cache. */
    void willNeed(long offset, long length) throws IOException {
        try {
            int rc = (int) FADVISE.invokeExact(fd, offset, length, POSIX_FADV_WILLNEED);
            if (rc != 0) throw new LibcException("posix_fadvise", path, rc);
        } catch (IOException e) {
            throw e;
        } catch (Throwable t) {
            throw new IOException("posix_fadvise through FFM failed", t);
        }
    }

    private static int errno(MemorySegment state) {
        return (int) ERRNO.get(state, 0L);
    }

    @Override
    public synchronized void close() throws IOException {
        if (closed) return;
        closed = true;
        try {
            int rc = (int) CLOSE.invokeExact(fd);
            if (rc != 0) throw new IOException("close of " + path + " failed");
        } catch (IOException e) {
            throw e;
        } catch (Throwable t) {
            throw new IOException("close through FFM failed", t);
        }
    }
}
