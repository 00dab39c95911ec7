package io.nbdgate.gateway.nbd.server;

import io.nbdgate.protocol.server.ExportCatalog;
import io.nbdgate.protocol.server.OfferedExport;
import io.nbdgate.protocol.server.ServerHandshake;
import io.vertx.core.Future;
import io.vertx.core.VerticleBase;
import io.vertx.core.WorkerExecutor;
import io.vertx.core.net.NetServer;
import io.vertx.core.net.NetServerOptions;
import io.vertx.core.net.SocketAddress;
import java.io.IOException;
import java.nio.file.Files;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;

/** The embedded NBD server: one NetServer, every connection an {@link NbdConnection} on this verticle's loop. */
final class NbdServerVerticle extends VerticleBase {
    /** Worker threads for file backends; more than the cores because they mostly wait on the disk. */
    static final int FILE_IO_THREADS = 8;

    private final NbdServerConfig config;
    private final Map<String, Export> exports = new LinkedHashMap<>();
    private NetServer server;
    private WorkerExecutor fileIo;
    private volatile int port = -1;
    /** Open connections; the verticle's event loop only. */
    private final Set<NbdConnection> open = new HashSet<>();
    private final java.util.concurrent.atomic.AtomicLong connections = new java.util.concurrent.atomic.AtomicLong();

    NbdServerVerticle(NbdServerConfig config) {
        this.config = config;
        for (Export e : config.exports()) exports.put(e.name(), e);
    }

    long connectionsAccepted() {
        return connections.get();
    }

    int port() {
        return port;
    }

    @Override
    public Future<?> start() throws IOException {
        ExportCatalog catalog = new ExportCatalog() {
            @Override public Optional<OfferedExport> find(String name) {
                return Optional.ofNullable(byName(name)).map(Export::info);
            }
            @Override public List<OfferedExport> all() {
                return exports.values().stream().map(Export::info).toList();
            }
        };
        fileIo = vertx.createSharedWorkerExecutor("nbd-file-io", FILE_IO_THREADS);
        server = vertx.createNetServer(new NetServerOptions().setTcpNoDelay(true));
        server.connectHandler(socket -> {
            connections.incrementAndGet();
            NbdConnection c = new NbdConnection(socket, catalog, this::byName, fileIo,
                    ServerHandshake.Policy.OFFER_ALL.withTls(config.tls().mode()), config.tls());
            open.add(c);
            c.start(() -> open.remove(c));
        });
        SocketAddress address;
        if (config.unixSocket() != null) {
            // A socket file left by an earlier run would make bind fail with EADDRINUSE.
            Files.deleteIfExists(config.unixSocket());
            address = SocketAddress.domainSocketAddress(config.unixSocket().toString());
        } else {
            address = SocketAddress.inetSocketAddress(config.port(), config.host());
        }
        return server.listen(address).onSuccess(s -> port = s.actualPort());
    }

    /** The export called {@code name}; the empty name is the first export. */
    private Export byName(String name) {
        if (name.isEmpty()) return exports.values().iterator().next();
        return exports.get(name);
    }

    @Override
    public Future<?> stop() {
        // Each connection ends itself first (close_notify over TLS), then the listener and what is left close.
        List<Future<Void>> ends = open.stream().map(NbdConnection::shutdown).toList();
        return Future.join(ends).eventually(() -> server.close()).eventually(() -> fileIo.close()).andThen(ar -> {
            if (config.unixSocket() != null) {
                try {
                    Files.deleteIfExists(config.unixSocket());
                } catch (IOException ignored) {
                    // best effort: the next start deletes it anyway
                }
            }
        });
    }
}
