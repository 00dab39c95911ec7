package io.nbdgate.ublk.target;

import static io.nbdgate.uring.IoUringAbi.*;

import io.nbdgate.ublk.BufferMode;
import io.nbdgate.ublk.IoRequest;
import io.nbdgate.ublk.Target;
import io.nbdgate.ublk.UblkAbi;
import io.nbdgate.uring.Errno;
import io.nbdgate.uring.LinuxCalls;
import io.nbdgate.uring.UringException;

/**
 * A loop device: requests become io_uring operations on a file, on the queue's own ring. In
 * zero-copy mode READ_FIXED / WRITE_FIXED move data between the file and the request's pages
 * (fixed buffer at index = tag); Java never touches it.
 */
public class FileTarget implements Target {
    private static final int RWF_DSYNC = 2;
    final int fd;
    private final boolean ownsFd;
    private boolean closed;

    FileTarget(int fd, boolean ownsFd) {
        this.fd = fd;
        this.ownsFd = ownsFd;
    }

    /** Opens {@code path} read-write; the file's size should equal the device's. */
    public static FileTarget open(String path) throws UringException {
        return new FileTarget(LinuxCalls.open(path, LinuxCalls.O_RDWR, 0), true);
    }

    @Override
    public void serve(IoRequest req) {
        switch (req.op()) {
            case UblkAbi.IO_OP_READ, UblkAbi.IO_OP_WRITE -> transfer(req);
            case UblkAbi.IO_OP_FLUSH -> req.submit(OP_FSYNC, fd, 0, 0, 0, FSYNC_DATASYNC, 0);
            // Holes read as zeroes, so one call serves both discard and write-zeroes.
            case UblkAbi.IO_OP_DISCARD, UblkAbi.IO_OP_WRITE_ZEROES -> req.submit(OP_FALLOCATE, fd, req.offset(),
                    req.length(), FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0, 0);
            default -> req.complete(-Errno.EOPNOTSUPP);
        }
    }

    private void transfer(IoRequest req) {
        boolean read = req.op() == UblkAbi.IO_OP_READ;
        long done = req.progress;
        int len = (int) (req.length() - done);
        int rwFlags = !read && (req.flags() & UblkAbi.IO_F_FUA) != 0 ? RWF_DSYNC : 0;
        if (req.mode() == BufferMode.ZERO_COPY) {
            // For a kernel-registered request buffer, addr is the byte offset inside it.
            req.submit(read ? OP_READ_FIXED : OP_WRITE_FIXED, fd, req.offset() + done, done, len, rwFlags,
                    req.bufferIndex());
        } else {
            req.submit(read ? OP_READ : OP_WRITE, fd, req.offset() + done, req.bufferAddress() + done, len,
                    rwFlags, 0);
        }
    }

    @Override
    public void onIo(IoRequest req, int res) {
        int op = req.op();
        if (op != UblkAbi.IO_OP_READ && op != UblkAbi.IO_OP_WRITE) {
            req.complete(res < 0 ? res : 0);
            return;
        }
        if (res <= 0) {
            req.complete(res < 0 ? res : -Errno.EIO); // 0 = past the end of the file
            return;
        }
        req.progress += res;
        if (req.progress < req.length()) {
            transfer(req); // short transfer: go on with the rest
        } else {
            req.complete(req.length());
        }
    }

    /** Idempotent: the device closes its targets, and callers may too. */
    @Override
    public synchronized void close() {
        if (closed) {
            return;
        }
        closed = true;
        closeResources();
        if (ownsFd) {
            LinuxCalls.close(fd);
        }
    }

    void closeResources() {
    }
}
