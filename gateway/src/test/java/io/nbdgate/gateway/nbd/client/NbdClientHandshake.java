package io.nbdgate.gateway.nbd.client;

import io.nbdgate.protocol.client.ClientHandshake;
import io.nbdgate.protocol.client.ExportEntry;
import io.nbdgate.protocol.client.HandshakeAction;
import io.nbdgate.protocol.client.HandshakeConfig;
import io.vertx.core.Context;
import io.vertx.core.Future;
import io.vertx.core.Promise;
import io.vertx.core.Vertx;
import io.vertx.core.buffer.Buffer;
import io.vertx.core.net.NetClient;
import io.vertx.core.net.NetClientOptions;
import io.vertx.core.net.NetSocket;
import io.vertx.core.net.SocketAddress;
import java.nio.ByteBuffer;
import java.util.List;

/**
 * Connects an {@link NbdClient} (or lists exports): a Vert.x socket fed into the protocol module's sans-I/O
 * {@link ClientHandshake}, whose actions it performs, until the client is ready or the export list is in.
 */
final class NbdClientHandshake {
    private NbdClientHandshake() {
    }

    static final class HandshakeResult {
        NbdClient client;
        List<ExportEntry> exports;
    }

    static Future<HandshakeResult> run(Vertx vertx, NbdUri uri, HandshakeConfig config, NbdClient.Options options) {
        if (uri.vsock()) {
            // Vert.x's NetClient has no AF_VSOCK; info, list, resize and devices (NbdQuery, the data path) do.
            return Future.failedFuture(new NbdConnectionException("the Vert.x NBD client cannot reach " + uri
                    + ": no vsock"));
        }
        NetClient net = vertx.createNetClient(new NetClientOptions().setConnectTimeout(options.connectTimeoutMillis()));
        SocketAddress address = uri.unixSocket() ? SocketAddress.domainSocketAddress(uri.socketPath())
                : SocketAddress.inetSocketAddress(uri.port(), uri.host());
        Promise<HandshakeResult> result = Promise.promise();
        // Connect from one explicit context: the socket's handlers then run on it, and so does every
        // command (onContext), so the reassembler is only ever touched by that one event-loop thread.
        Context context = vertx.getOrCreateContext();
        context.runOnContext(v -> net.connect(address).onComplete(ar -> {
            if (ar.failed()) {
                net.close();
                result.fail(new NbdConnectionException("cannot connect to " + uri + ": " + describe(ar.cause()), ar.cause()));
                return;
            }
            new HandshakeDriver(context, net, ar.result(), config, options, result).start();
        }));
        return result.future();
    }

    private static String describe(Throwable t) {
        String m = t.getMessage();
        return m == null ? t.getClass().getSimpleName() : m;
    }

    /** Feeds socket bytes into the handshake state machine and performs its actions. */
    private static final class HandshakeDriver {
        final Context context;
        final NetClient net;
        final NetSocket socket;
        final ClientHandshake machine;
        final NbdClient.Options options;
        final Promise<HandshakeResult> result;
        final Promise<Void> closed = Promise.promise();
        ByteBuffer input = ByteBuffer.allocate(4096).flip();
        NbdClient client;

        HandshakeDriver(Context context, NetClient net, NetSocket socket, HandshakeConfig config, NbdClient.Options options,
                        Promise<HandshakeResult> result) {
            this.context = context;
            this.net = net;
            this.socket = socket;
            this.machine = new ClientHandshake(config);
            this.options = options;
            this.result = result;
        }

        void start() {
            if (Vertx.currentContext() != context) {
                throw new IllegalStateException("handshake must start on the connection's context");
            }
            socket.handler(this::onData);
            socket.closeHandler(v -> onClosed());
            socket.exceptionHandler(err -> { }); // surfaces as close
            advance(machine.step(input));
        }

        void onData(Buffer data) {
            if (client != null) {
                client.onData(data);
                return;
            }
            int n = data.length();
            if (input.capacity() - input.remaining() < n) {
                ByteBuffer bigger = ByteBuffer.allocate(Math.max(input.capacity() * 2, input.remaining() + n));
                bigger.put(input).flip();
                input = bigger;
            }
            input.compact().put(data.getBytes()).flip();
            advance(machine.step(input));
        }

        void onClosed() {
            if (client != null) {
                client.onClosed();
                return;
            }
            net.close();
            if (!result.future().isComplete()) {
                advance(machine.endOfStream());
            }
            closed.tryComplete();
        }

        void advance(HandshakeAction action) {
            while (true) {
                switch (action) {
                    case HandshakeAction.Send s -> {
                        byte[] b = new byte[s.bytes().remaining()];
                        s.bytes().get(b);
                        socket.write(Buffer.buffer(b));
                        action = machine.step(input);
                    }
                    case HandshakeAction.NeedMore n -> {
                        return;
                    }
                    case HandshakeAction.UpgradeToTls u -> {
                        fail(new NbdConnectionException("the server accepted STARTTLS but TLS is not supported yet"));
                        return;
                    }
                    case HandshakeAction.Ready r -> {
                        HandshakeResult hr = new HandshakeResult();
                        client = new NbdClient(context, net, socket, r.export(), input, options, closed);
                        hr.client = client;
                        result.tryComplete(hr);
                        // Bytes that arrived with the last handshake message belong to transmission.
                        if (input.hasRemaining()) {
                            client.onData(Buffer.buffer());
                        }
                        return;
                    }
                    case HandshakeAction.Listed l -> {
                        HandshakeResult hr = new HandshakeResult();
                        hr.exports = l.exports();
                        result.tryComplete(hr);
                        socket.close();
                        return;
                    }
                    case HandshakeAction.Failed f -> {
                        fail(new NbdConnectionException(f.error().message()));
                        return;
                    }
                }
            }
        }

        void fail(Throwable t) {
            result.tryFail(t);
            socket.close();
        }
    }
}
