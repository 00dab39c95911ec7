package io.nbdgate.gateway.tls;

import io.nbdgate.gateway.net.BlockingSocket;
import java.io.IOException;
import java.net.SocketException;
import java.net.SocketTimeoutException;
import java.nio.ByteBuffer;

/**
 * A {@link TlsEngine} over a {@link BlockingSocket}, for the CLI's one-question connections (info, list, resize):
 * the handshake runs to its end in {@link #handshake}, then plaintext is written and read through it.
 */
public final class BlockingTls {
    private final BlockingSocket socket;
    private final TlsEngine engine;
    private final ByteBuffer out = ByteBuffer.allocate(32 * 1024);
    private final ByteBuffer in = ByteBuffer.allocate(32 * 1024);

    private BlockingTls(BlockingSocket socket, TlsEngine engine) {
        this.socket = socket;
        this.engine = engine;
    }

    /** Runs the TLS handshake on {@code socket}; a refusal is a {@link TlsException} naming the cause. */
    public static BlockingTls handshake(BlockingSocket socket, ClientCredentials credentials) throws IOException {
        BlockingTls tls = new BlockingTls(socket, TlsEngine.start(credentials));
        tls.flush();
        while (tls.engine.handshaking()) {
            if (!tls.fill()) {
                TlsException why = tls.engine.endOfStream();
                throw why != null ? why : new TlsException("the server closed the connection during the TLS handshake");
            }
            tls.flush();
        }
        return tls;
    }

    public TlsDescription description() {
        return engine.description();
    }

    public void writeFully(ByteBuffer plaintext) throws IOException {
        engine.writeApplication(plaintext);
        flush();
    }

    /** Plaintext into {@code b}: at least one byte, or -1 at the end of the stream. */
    public int read(ByteBuffer b) throws IOException {
        while (engine.applicationAvailable() == 0) {
            if (!fill()) {
                TlsException why = engine.endOfStream();
                if (why != null) {
                    throw why;
                }
                return -1;
            }
            flush(); // a KeyUpdate may want an answer
        }
        return engine.readApplication(b);
    }

    /** Sends close_notify (best effort: the socket closes next anyway). */
    public void close() {
        engine.close();
        try {
            flush();
        } catch (IOException ignored) {
            // the peer may be gone already
        }
    }

    private void flush() throws IOException {
        while (engine.outputAvailable() > 0) {
            out.clear();
            engine.takeOutput(out);
            try {
                socket.writeFully(out.flip());
            } catch (SocketTimeoutException e) {
                throw e;
            } catch (IOException e) { // reset or broken pipe: a refusal may explain it
                TlsException why = engine.endOfStream();
                if (why != null) {
                    throw why;
                }
                throw e;
            }
        }
    }

    /** More bytes from the server; false at the end of the stream (a reset counts: GnuTLS resets on refusal). */
    private boolean fill() throws IOException {
        in.clear();
        int got;
        try {
            got = socket.read(in);
        } catch (SocketException e) {
            got = -1; // a reset is an end too: the cause is asked of the engine
        }
        if (got < 0) {
            return false;
        }
        engine.received(in.flip());
        return true;
    }
}
