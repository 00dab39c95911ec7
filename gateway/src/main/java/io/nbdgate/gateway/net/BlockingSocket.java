package io.nbdgate.gateway.net;

import java.io.Closeable;
import java.io.IOException;
import java.net.SocketAddress;
import java.net.SocketTimeoutException;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.SelectionKey;
import java.nio.channels.Selector;
import java.nio.channels.SocketChannel;
import java.util.concurrent.TimeUnit;

/**
 * One TCP, unix or vsock socket for a short exchange from the calling thread, every step bounded by one deadline.
 * A CLI command that asks one question needs no event loop: this costs a selector and no thread. vsock, which
 * the JDK cannot open, goes through {@link FdStream}.
 */
public final class BlockingSocket implements Closeable {
    private final SocketChannel channel;
    private final Selector selector;
    private final FdStream fd;
    private long deadline;

    private BlockingSocket(SocketChannel channel, Selector selector, FdStream fd, long deadline) {
        this.channel = channel;
        this.selector = selector;
        this.fd = fd;
        this.deadline = deadline;
    }

    /** Connects to {@code address}; connecting, and then reading and writing, end at now + {@code timeoutMillis}. */
    public static BlockingSocket connect(SocketAddress address, long timeoutMillis) throws IOException {
        long deadline = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(timeoutMillis);
        if (address instanceof VsockAddress v) {
            return new BlockingSocket(null, null, FdStream.connect(v, deadline), deadline);
        }
        SocketChannel ch = address instanceof UnixDomainSocketAddress
                ? SocketChannel.open(StandardProtocolFamily.UNIX) : SocketChannel.open();
        Selector selector = null;
        try {
            ch.configureBlocking(false);
            selector = Selector.open();
            BlockingSocket s = new BlockingSocket(ch, selector, null, deadline);
            if (!ch.connect(address)) {
                s.await(SelectionKey.OP_CONNECT, "connecting");
                ch.finishConnect();
            }
            return s;
        } catch (IOException | RuntimeException e) {
            ch.close();
            if (selector != null) {
                selector.close();
            }
            throw e;
        }
    }

    /** Moves the deadline for what follows to now + {@code timeoutMillis}. */
    public void deadlineIn(long timeoutMillis) {
        deadline = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(timeoutMillis);
    }

    /** Writes all of {@code b}. */
    public void writeFully(ByteBuffer b) throws IOException {
        if (fd != null) {
            fd.writeFully(b, deadline);
            return;
        }
        while (b.hasRemaining()) {
            if (channel.write(b) == 0) {
                await(SelectionKey.OP_WRITE, "sending");
            }
        }
    }

    /** Reads what is there (at least one byte), or -1 at end of stream. */
    public int read(ByteBuffer b) throws IOException {
        if (fd != null) {
            return fd.read(b, deadline);
        }
        while (true) {
            int n = channel.read(b);
            if (n != 0 || !b.hasRemaining()) {
                return n;
            }
            await(SelectionKey.OP_READ, "waiting for an answer");
        }
    }

    private void await(int op, String what) throws IOException {
        SelectionKey key = channel.register(selector, op);
        try {
            while (true) {
                long left = TimeUnit.NANOSECONDS.toMillis(deadline - System.nanoTime());
                if (left <= 0) {
                    throw new SocketTimeoutException("timed out " + what);
                }
                if (selector.select(left) > 0) {
                    selector.selectedKeys().clear();
                    return;
                }
            }
        } finally {
            key.interestOps(0);
        }
    }

    @Override
    public void close() throws IOException {
        if (fd != null) {
            fd.close();
            return;
        }
        try {
            channel.close();
        } finally {
            selector.close();
        }
    }
}
