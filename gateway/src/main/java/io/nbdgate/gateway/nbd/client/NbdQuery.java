package io.nbdgate.gateway.nbd.client;

import io.nbdgate.gateway.net.BlockingSocket;
import io.nbdgate.gateway.net.VsockAddress;
import io.nbdgate.gateway.tls.BlockingTls;
import io.nbdgate.gateway.tls.TlsDescription;
import io.nbdgate.gateway.tls.TlsException;
import io.nbdgate.gateway.tls.ClientCredentials;
import io.nbdgate.protocol.Command;
import io.nbdgate.protocol.ExportInfo;
import io.nbdgate.protocol.client.ClientHandshake;
import io.nbdgate.protocol.client.ExportEntry;
import io.nbdgate.protocol.client.HandshakeAction;
import io.nbdgate.protocol.client.HandshakeConfig;
import io.nbdgate.protocol.wire.RequestCodec;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.net.SocketException;
import java.net.SocketAddress;
import java.net.UnixDomainSocketAddress;
import java.nio.ByteBuffer;
import java.util.List;

/**
 * One question to an NBD server from the calling thread: an export's description ({@code nbdgate info}) or the
 * export list ({@code nbdgate list URI}). The protocol module's sans-I/O {@link ClientHandshake}, the one the data
 * path drives from its ring, driven here over a {@link BlockingSocket}: a CLI command that only shakes hands
 * starts no event loop.
 */
public final class NbdQuery {
    // The whole handshake after connecting (a few small messages); --connect-timeout bounds the connect.
    private static final long ANSWER_TIMEOUT_MILLIS = 60_000;

    private NbdQuery() {
    }

    /** An answer, and the TLS connection it came over (null without TLS). */
    public record Answer<T>(T value, TlsDescription tls) {
    }

    /** The export {@code uri} names, as the handshake describes it; then a clean disconnect. */
    public static Answer<ExportInfo> info(NbdUri uri, QueryOptions options) {
        HandshakeConfig config = options.handshakeConfig(uri);
        return withSocket(uri, options, wire -> new Answer<>(goThenDisconnect(wire, config), wire.tlsDescription()));
    }

    private static ExportInfo goThenDisconnect(Wire wire, HandshakeConfig config) throws IOException {
        ExportInfo export = ((HandshakeAction.Ready) handshake(wire, config)).export();
        ByteBuffer disc = ByteBuffer.allocate(32);
        RequestCodec.encode(disc, export.mode(), Command.DISC, 0, 0, 0, 0);
        wire.write(disc.flip());
        wire.close();
        return export;
    }

    /**
     * The export as a device's handshake sees it now, on a connection of its own ({@code nbdgate resize} asks
     * again for the size); then a clean disconnect. {@code what} names the server in errors.
     */
    public static ExportInfo info(SocketAddress address, HandshakeConfig config, ClientCredentials tls,
                                  int connectTimeoutMillis, String what) {
        return withSocket(address, connectTimeoutMillis, what, tls, wire -> goThenDisconnect(wire, config));
    }

    /** The server's exports (NBD_OPT_LIST, then NBD_OPT_ABORT). */
    public static Answer<List<ExportEntry>> list(NbdUri uri, QueryOptions options) {
        HandshakeConfig list = new HandshakeConfig("", HandshakeConfig.Goal.LIST, uri.tls(), false, false);
        return withSocket(uri, options, wire -> {
            List<ExportEntry> exports = ((HandshakeAction.Listed) handshake(wire, list)).exports();
            wire.close();
            return new Answer<>(exports, wire.tlsDescription());
        });
    }

    private interface Exchange<T> {
        T run(Wire wire) throws IOException;
    }

    /**
     * The connection the handshake talks over: the socket, and after NBD_OPT_STARTTLS the TLS session on it.
     * Without {@code tls} settings, STARTTLS is never asked for.
     */
    private static final class Wire {
        final BlockingSocket socket;
        final ClientCredentials tls;
        BlockingTls session;

        Wire(BlockingSocket socket, ClientCredentials tls) {
            this.socket = socket;
            this.tls = tls;
        }

        void startTls() throws IOException {
            if (tls == null) {
                throw new NbdConnectionException("the server accepted STARTTLS that was not asked for");
            }
            session = BlockingTls.handshake(socket, tls);
        }

        void write(ByteBuffer b) throws IOException {
            if (session != null) {
                session.writeFully(b);
            } else {
                socket.writeFully(b);
            }
        }

        int read(ByteBuffer b) throws IOException {
            return session != null ? session.read(b) : socket.read(b);
        }

        TlsDescription tlsDescription() {
            return session == null ? null : session.description();
        }

        void close() {
            if (session != null) {
                session.close();
            }
        }
    }

    private static <T> T withSocket(NbdUri uri, QueryOptions options, Exchange<T> exchange) {
        SocketAddress address = uri.unixSocket() ? UnixDomainSocketAddress.of(uri.socketPath())
                : uri.vsock() ? new VsockAddress(Integer.parseUnsignedInt(uri.host()), uri.port())
                : new InetSocketAddress(uri.host(), uri.port());
        ClientCredentials tls = null;
        if (uri.tls()) {
            try {
                tls = ClientCredentials.load(uri.tlsSettings(), uri.tlsHostname()); // bad files fail before connecting
            } catch (TlsException e) {
                throw new NbdConnectionException("TLS for " + uri + ": " + e.getMessage(), e);
            }
        }
        return withSocket(address, options.connectTimeoutMillis(), uri.toString(), tls, exchange);
    }

    private static <T> T withSocket(SocketAddress address, int connectTimeoutMillis, String what,
                                    ClientCredentials tls, Exchange<T> exchange) {
        BlockingSocket socket;
        try {
            socket = BlockingSocket.connect(address, connectTimeoutMillis);
        } catch (IOException e) {
            throw new NbdConnectionException("cannot connect to " + what + ": " + describe(e), e);
        }
        try (socket) {
            socket.deadlineIn(ANSWER_TIMEOUT_MILLIS);
            return exchange.run(new Wire(socket, tls));
        } catch (IOException e) {
            throw new NbdConnectionException("connection to " + what + " failed: " + describe(e), e);
        } catch (TlsException e) {
            throw new NbdConnectionException("TLS with " + what + " failed: " + e.getMessage(), e);
        }
    }

    /** Runs the handshake to its end: Ready or Listed; a failure is thrown. */
    private static HandshakeAction handshake(Wire wire, HandshakeConfig config) throws IOException {
        ClientHandshake machine = new ClientHandshake(config);
        ByteBuffer input = ByteBuffer.allocate(4096).flip();
        HandshakeAction action = machine.step(input);
        // if/instanceof, not a pattern switch: its bootstrap makes a class at run time, a cost to `nbdgate info`.
        while (true) {
            if (action instanceof HandshakeAction.Send s) {
                wire.write(s.bytes());
            } else if (action instanceof HandshakeAction.NeedMore n) {
                if (input.capacity() < n.bytes()) {
                    input = ByteBuffer.allocate(Math.max(n.bytes(), 2 * input.capacity())).put(input).flip();
                }
                input.compact();
                int got;
                try {
                    got = wire.read(input);
                } catch (SocketException e) {
                    got = -1; // a reset is a close too: the spec lets a server drop the line after NBD_OPT_ABORT
                }
                input.flip();
                if (got < 0) {
                    action = machine.endOfStream();
                    if (action instanceof HandshakeAction.NeedMore) {
                        throw new NbdConnectionException("the NBD server closed the connection during the handshake");
                    }
                    continue;
                }
            } else if (action instanceof HandshakeAction.Ready || action instanceof HandshakeAction.Listed) {
                return action;
            } else if (action instanceof HandshakeAction.UpgradeToTls) {
                if (input.hasRemaining()) {
                    // Bytes after the STARTTLS reply and before our ClientHello: injected in plaintext (CVE-2021-3716).
                    throw new NbdConnectionException("the server sent data in plaintext after accepting STARTTLS");
                }
                wire.startTls();
                machine.tlsEstablished();
            } else if (action instanceof HandshakeAction.Failed f) {
                throw new NbdConnectionException(f.error().message());
            } else {
                throw new IllegalStateException("a handshake action this loop does not know: " + action);
            }
            action = machine.step(input);
        }
    }

    private static String describe(Throwable t) {
        return t.getMessage() == null ? t.getClass().getSimpleName() : t.getMessage();
    }
}
