package io.nbdgate.gateway.tls;

import io.nbdgate.uring.Errno;
import io.nbdgate.uring.LinuxCalls;
import io.nbdgate.uring.UringException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.ByteBuffer;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.locks.ReentrantLock;
import java.util.concurrent.atomic.LongAdder;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * TLS in userspace for a data-path connection whose record layer the kernel cannot take (no tls module, or
 * {@code -Dnbdgate.kernelTls=false}). The link goes on speaking plaintext on its ring, to one end of a socket
 * pair; two threads move the bytes between the other end and the server's socket, the handshake's engine
 * decrypting and encrypting them. Every data byte then passes through Java, as through nbd-client's GnuTLS
 * proxy: the price of having no kernel TLS, counted in {@link #bytesThroughJava}.
 *
 * <p>Records leave in the order the engine made them: making and sending happen under one lock. Receiving
 * never waits for it, so a send blocked on a full socket never stops the replies that would drain it: a
 * record the receiving side makes (an answer to a KeyUpdate) is sent by whoever holds the lock.
 */
public final class TlsRelay {
    private static final Logger LOG = LoggerFactory.getLogger(TlsRelay.class);
    private static final int CHUNK = 64 << 10;
    private static final LongAdder THROUGH_JAVA = new LongAdder();
    private static final AtomicInteger SERIAL = new AtomicInteger();

    private final int serverFd;
    private final int relayFd;
    private final int linkFd;
    private final TlsEngine engine;
    private final String peer;
    private final ReentrantLock sending = new ReentrantLock();
    private final AtomicInteger running = new AtomicInteger(2);
    /** Guarded by this: the relay is ending (the first to end it says why, unless the link did). */
    private boolean ending;
    private boolean closed;

    private TlsRelay(int serverFd, int[] pair, TlsEngine engine, String peer) {
        this.serverFd = serverFd;
        this.linkFd = pair[0];
        this.relayFd = pair[1];
        this.engine = engine;
        this.peer = peer;
    }

    /**
     * Takes over {@code serverFd} (blocking, TLS established by {@code engine}) and returns the relay; the link
     * uses {@link #linkFd} from now on and must not touch {@code serverFd} again.
     */
    public static TlsRelay start(int serverFd, TlsEngine engine, String peer) {
        int[] pair;
        try {
            pair = LinuxCalls.unixStreamPair();
        } catch (UringException e) {
            throw new TlsException("cannot relay TLS in userspace: " + e.getMessage());
        }
        TlsRelay relay = new TlsRelay(serverFd, pair, engine, peer);
        int n = SERIAL.incrementAndGet();
        Thread.ofPlatform().daemon().name("nbdgate-tls-rx-" + n).start(relay::fromServer);
        Thread.ofPlatform().daemon().name("nbdgate-tls-tx-" + n).start(relay::toServer);
        return relay;
    }

    /** The link's end: plaintext, as the server would speak it without TLS. */
    public int linkFd() {
        return linkFd;
    }

    /** Plaintext bytes this process encrypted or decrypted for the data path, process-wide. */
    public static long bytesThroughJava() {
        return THROUGH_JAVA.sum();
    }

    /**
     * Ends the relay from the link's side: both threads wake (a blocked read or write on a shut-down socket
     * returns) and close what they hold. A dead server's unacknowledged records are dropped, not retransmitted.
     */
    public synchronized void shutdown() {
        if (!ending) {
            ending = true;
            LinuxCalls.setLinger(serverFd, true, 0);
            LinuxCalls.shutdown(serverFd, LinuxCalls.SHUT_RDWR);
            LinuxCalls.shutdown(relayFd, LinuxCalls.SHUT_RDWR);
        }
    }

    /** Server records in, plaintext out to the link. */
    private void fromServer() {
        String why = null;
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment in = arena.allocate(CHUNK);
            MemorySegment plain = arena.allocate(CHUNK);
            MemorySegment out = arena.allocate(CHUNK);
            ByteBuffer inBuf = in.asByteBuffer();
            ByteBuffer plainBuf = plain.asByteBuffer();
            while (why == null) {
                // Application data may already wait in the engine: what came with the handshake's last records.
                why = toLink(plain, plainBuf);
                if (why != null) {
                    break;
                }
                long n = readSome(serverFd, in);
                if (n <= 0) {
                    why = n == 0 ? serverClosed() : "receiving from the server failed: " + Errno.describe((int) -n);
                    break;
                }
                boolean answer;
                synchronized (engine) {
                    engine.received(inBuf.clear().limit((int) n));
                    answer = engine.outputAvailable() > 0; // a KeyUpdate to acknowledge
                }
                if (answer) {
                    why = flushUnlessSending(out);
                }
            }
        } catch (TlsException e) {
            why = e.getMessage();
        }
        end(why);
    }

    /** Plaintext from the link in, records out to the server. */
    private void toServer() {
        String why = null;
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment plain = arena.allocate(CHUNK);
            MemorySegment out = arena.allocate(CHUNK);
            ByteBuffer plainBuf = plain.asByteBuffer();
            while (why == null) {
                long n = readSome(relayFd, plain);
                if (n <= 0) {
                    break; // the link closed its end: it ended the connection and says why itself
                }
                THROUGH_JAVA.add(n);
                sending.lock();
                try {
                    synchronized (engine) {
                        engine.writeApplication(plainBuf.clear().limit((int) n));
                    }
                    why = flushRecords(out);
                } finally {
                    sending.unlock();
                }
                if (why == null) {
                    why = flushUnlessSending(out); // what the receiving side made while this one sent
                }
            }
        } catch (TlsException e) {
            why = e.getMessage();
        }
        end(why);
    }

    private String toLink(MemorySegment plain, ByteBuffer plainBuf) {
        while (true) {
            int n;
            synchronized (engine) {
                n = engine.readApplication(plainBuf.clear());
            }
            if (n == 0) {
                return null;
            }
            THROUGH_JAVA.add(n);
            if (!writeFully(relayFd, plain.asSlice(0, n))) {
                return null; // the link's end is gone: it ended the connection
            }
        }
    }

    /**
     * Sends what the engine has for the server unless another thread is sending: that one looks again once it
     * has let go, and so sees what was made before this call.
     */
    private String flushUnlessSending(MemorySegment out) {
        while (sending.tryLock()) {
            String why;
            try {
                why = flushRecords(out);
            } finally {
                sending.unlock();
            }
            synchronized (engine) {
                if (why != null || engine.outputAvailable() == 0) {
                    return why;
                }
            }
        }
        return null;
    }

    /** Sends every record the engine has for the server, through {@code out}; caller holds {@link #sending}. */
    private String flushRecords(MemorySegment out) {
        ByteBuffer outBuf = out.asByteBuffer();
        while (true) {
            int n;
            synchronized (engine) {
                n = engine.takeOutput(outBuf.clear());
            }
            if (n == 0) {
                return null;
            }
            if (!writeFully(serverFd, out.asSlice(0, n))) {
                return "sending to the server failed";
            }
        }
    }

    private String serverClosed() {
        TlsException why;
        synchronized (engine) {
            why = engine.endOfStream();
        }
        return why != null ? why.getMessage() : "the server closed the connection";
    }

    private void end(String why) {
        boolean last = running.decrementAndGet() == 0;
        synchronized (this) {
            if (!ending) {
                ending = true;
                if (why != null) {
                    LOG.info("TLS relay to {} ended: {}", peer, why);
                }
                // The other thread wakes up and ends too; the link sees the end of its stream.
                LinuxCalls.shutdown(serverFd, LinuxCalls.SHUT_RDWR);
                LinuxCalls.shutdown(relayFd, LinuxCalls.SHUT_RDWR);
            }
            if (last) {
                closed = true; // from here the descriptors may be reused: shutdown() must not touch them
                LinuxCalls.close(serverFd);
                LinuxCalls.close(relayFd);
            }
        }
    }

    private static long readSome(int fd, MemorySegment buf) {
        while (true) {
            long n = LinuxCalls.read(fd, buf);
            if (n != -Errno.EINTR) {
                return n;
            }
        }
    }

    private static boolean writeFully(int fd, MemorySegment buf) {
        long off = 0;
        while (off < buf.byteSize()) {
            long n = LinuxCalls.sendNoSignal(fd, buf.asSlice(off));
            if (n == -Errno.EINTR) {
                continue;
            }
            if (n <= 0) {
                return false;
            }
            off += n;
        }
        return true;
    }
}
