package io.nbdgate.gateway.net;

import io.nbdgate.uring.Errno;
import io.nbdgate.uring.LinuxCalls;
import java.io.Closeable;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.net.ConnectException;
import java.net.SocketTimeoutException;
import java.nio.ByteBuffer;
import java.util.concurrent.TimeUnit;

/**
 * A stream socket the JDK cannot open (AF_VSOCK), non-blocking and waited on with poll(2), each wait bounded by
 * the caller's deadline: {@link BlockingSocket}'s other half. Bytes pass through one native buffer.
 */
final class FdStream implements Closeable {
    private static final int BUFFER = 64 << 10;

    private final int fd;
    private final Arena arena = Arena.ofShared();
    private final MemorySegment buffer = arena.allocate(BUFFER);

    private FdStream(int fd) {
        this.fd = fd;
    }

    static FdStream connect(VsockAddress address, long deadlineNanos) throws IOException {
        int fd = LinuxCalls.streamSocketNonBlocking(VsockAddress.AF_VSOCK);
        if (fd < 0) {
            throw new IOException("socket(AF_VSOCK): " + Errno.describe(-fd)
                    + (fd == -Errno.EAFNOSUPPORT ? " (no vsock transport: load vsock_loopback, vmw_vsock_virtio_transport, ...)" : ""));
        }
        FdStream s = new FdStream(fd);
        try {
            int r = LinuxCalls.connect(fd, address.encode(s.arena));
            if (r == -Errno.EINPROGRESS || r == -Errno.EAGAIN) {
                s.await(LinuxCalls.POLLOUT, deadlineNanos, "connecting");
                r = -LinuxCalls.socketError(fd);
            }
            if (r != 0) {
                throw new ConnectException(Errno.describe(-r));
            }
            return s;
        } catch (IOException | RuntimeException e) {
            s.close();
            throw e;
        }
    }

    void writeFully(ByteBuffer b, long deadlineNanos) throws IOException {
        while (b.hasRemaining()) {
            int n = Math.min(b.remaining(), BUFFER);
            MemorySegment chunk = buffer.asSlice(0, n);
            chunk.copyFrom(MemorySegment.ofBuffer(b.slice(b.position(), n)));
            long w = LinuxCalls.write(fd, chunk);
            if (w == -Errno.EAGAIN) {
                await(LinuxCalls.POLLOUT, deadlineNanos, "sending");
            } else if (w < 0 && w != -Errno.EINTR) {
                throw new IOException("write: " + Errno.describe((int) -w));
            } else if (w > 0) {
                b.position(b.position() + (int) w);
            }
        }
    }

    /** At least one byte, or -1 at end of stream. */
    int read(ByteBuffer b, long deadlineNanos) throws IOException {
        while (true) {
            int n = Math.min(b.remaining(), BUFFER);
            if (n == 0) {
                return 0;
            }
            long r = LinuxCalls.read(fd, buffer.asSlice(0, n));
            if (r > 0) {
                MemorySegment.ofBuffer(b.slice(b.position(), (int) r)).copyFrom(buffer.asSlice(0, r));
                b.position(b.position() + (int) r);
                return (int) r;
            }
            if (r == 0) {
                return -1;
            }
            if (r == -Errno.EAGAIN) {
                await(LinuxCalls.POLLIN, deadlineNanos, "waiting for an answer");
            } else if (r != -Errno.EINTR) {
                throw new IOException("read: " + Errno.describe((int) -r));
            }
        }
    }

    private void await(short events, long deadlineNanos, String what) throws IOException {
        while (true) {
            long left = TimeUnit.NANOSECONDS.toMillis(deadlineNanos - System.nanoTime());
            if (left <= 0) {
                throw new SocketTimeoutException("timed out " + what);
            }
            int r = LinuxCalls.poll(fd, events, (int) Math.min(Integer.MAX_VALUE, left));
            if (r > 0) {
                return; // ready, or an error the next call reports
            }
            if (r < 0 && r != -Errno.EINTR) {
                throw new IOException("poll: " + Errno.describe(-r));
            }
        }
    }

    @Override
    public void close() {
        LinuxCalls.close(fd);
        arena.close();
    }
}
