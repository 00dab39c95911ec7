package io.nbdgate.gateway.tls;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.security.SecureRandom;
import org.bouncycastle.tls.AlertDescription;
import org.bouncycastle.tls.TlsFatalAlert;
import org.bouncycastle.tls.TlsFatalAlertReceived;
import org.bouncycastle.tls.TlsProtocol;

/**
 * One TLS connection without I/O, either side: bytes from the peer go in ({@link #received}), bytes for the
 * peer come out ({@link #takeOutput}), plaintext is read and written in between. The owner moves the bytes
 * over its socket. Failures are {@link TlsException}s whose message names the cause in one line.
 */
public abstract sealed class TlsConnection permits TlsEngine, TlsServerEngine {
    static final SecureRandom RANDOM = new SecureRandom();

    final TlsProtocol protocol;

    TlsConnection(TlsProtocol protocol) {
        this.protocol = protocol;
    }

    /** What a fatal alert from the peer means, as this side sees it. */
    abstract TlsException peerRefused(short alert, IOException e);

    /** One line for what went wrong, with the cause we found ourselves when there is one. */
    final TlsException describe(IOException e) {
        if (e instanceof TlsFatalAlert f && f.getCause() instanceof TlsException ours) {
            return ours;
        }
        if (e instanceof TlsFatalAlertReceived r) {
            return peerRefused(r.getAlertDescription(), e);
        }
        if (e instanceof TlsFatalAlert f) {
            return new TlsException("TLS failed: " + AlertDescription.getText(f.getAlertDescription())
                    + (f.getMessage() == null ? "" : " (" + f.getMessage() + ")"), e);
        }
        return new TlsException("TLS failed: " + (e.getMessage() == null ? e.getClass().getSimpleName()
                : e.getMessage()), e);
    }

    public boolean handshaking() {
        return !protocol.isConnected() && !protocol.isClosed();
    }

    public boolean connected() {
        return protocol.isConnected();
    }

    public int outputAvailable() {
        return protocol.getAvailableOutputBytes();
    }

    /** Moves up to {@code dst.remaining()} bytes for the peer into {@code dst}. */
    public int takeOutput(ByteBuffer dst) {
        return protocol.readOutput(dst, Math.min(dst.remaining(), protocol.getAvailableOutputBytes()));
    }

    /** All bytes waiting for the peer. */
    public byte[] takeOutput() {
        byte[] b = new byte[protocol.getAvailableOutputBytes()];
        protocol.readOutput(b, 0, b.length);
        return b;
    }

    /**
     * Bytes from the peer; what they decrypt to waits in {@link #readApplication}. Once this side is closed
     * they are dropped: a peer's close_notify that crossed ours is the normal end (RFC 8446 6.1).
     */
    public void received(ByteBuffer in) {
        if (protocol.isClosed()) {
            in.position(in.limit());
            return;
        }
        byte[] b = new byte[in.remaining()];
        in.get(b);
        try {
            protocol.offerInput(b);
        } catch (IOException e) {
            throw describe(e);
        }
    }

    public int applicationAvailable() {
        return protocol.applicationDataAvailable();
    }

    public int readApplication(ByteBuffer dst) {
        return protocol.readInput(dst, Math.min(dst.remaining(), protocol.applicationDataAvailable()));
    }

    /** Encrypts {@code src} whole; the records wait in {@link #takeOutput}. */
    public void writeApplication(ByteBuffer src) {
        byte[] b = new byte[src.remaining()];
        src.get(b);
        try {
            protocol.writeApplicationData(b, 0, b.length);
        } catch (IOException e) {
            throw describe(e);
        }
    }

    /** Queues close_notify. */
    public void close() {
        try {
            protocol.close();
        } catch (IOException ignored) {
            // closing a broken connection: nothing more to say
        }
    }
}
