package io.nbdgate.gateway.nbd.server;

import io.vertx.core.Future;
import io.vertx.core.Vertx;
import io.vertx.core.VertxOptions;
import io.vertx.core.transport.Transport;
import java.nio.file.Path;
import java.util.concurrent.TimeUnit;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The embedded NBD server as a thing you start and stop in-process (the demo, the tests, and
 * {@code nbdgate serve}). {@link #start} owns a Vert.x instance on io_uring when the kernel has
 * it; {@link #deploy} runs on a Vert.x you already have. {@link #close()} stops serving and closes
 * the exports' backends.
 */
public final class EmbeddedNbdServer implements AutoCloseable {
    private static final Logger log = LoggerFactory.getLogger(EmbeddedNbdServer.class);

    private final Vertx vertx;
    private final boolean ownsVertx;
    private final String deploymentId;
    private final NbdServerVerticle verticle;
    private final NbdServerConfig config;

    private EmbeddedNbdServer(Vertx vertx, boolean ownsVertx, String deploymentId, NbdServerVerticle verticle, NbdServerConfig config) {
        this.vertx = vertx;
        this.ownsVertx = ownsVertx;
        this.deploymentId = deploymentId;
        this.verticle = verticle;
        this.config = config;
    }

    /** Starts a server on a Vert.x of its own and waits until it listens. */
    public static EmbeddedNbdServer start(NbdServerConfig config) throws Exception {
        Vertx vertx = createVertx(config.unixSocket() == null);
        try {
            NbdServerVerticle verticle = new NbdServerVerticle(config);
            String id = vertx.deployVerticle(verticle).await(30, TimeUnit.SECONDS);
            EmbeddedNbdServer server = new EmbeddedNbdServer(vertx, true, id, verticle, config);
            log.info("NBD server listening on {} ({} transport)", server.where(), server.transport());
            return server;
        } catch (Exception e) {
            vertx.close().await(10, TimeUnit.SECONDS);
            throw e;
        }
    }

    /** Deploys the server on an existing Vert.x; closing it leaves that Vert.x running. */
    public static Future<EmbeddedNbdServer> deploy(Vertx vertx, NbdServerConfig config) {
        if (config.unixSocket() != null && vertx.isNativeTransportEnabled()) {
            return Future.failedFuture(new IllegalArgumentException(
                    "a unix socket needs a Vert.x on the NIO transport: io_uring in Vert.x 5.0.10 cannot listen on one"));
        }
        NbdServerVerticle verticle = new NbdServerVerticle(config);
        return vertx.deployVerticle(verticle).map(id -> new EmbeddedNbdServer(vertx, false, id, verticle, config));
    }

    /**
     * The Vert.x options of a process that runs the embedded server (serve, demo). The server starts and takes
     * its first connections in cold code on its event loop: classes the AOT cache does not hold (it is recorded
     * from attach and daemon), Netty's checks of its handlers' annotations, the ring's set-up, a TLS handshake.
     * That is a tenth of a second on a real machine and 2-5 s, once, on an emulated one, where Vert.x's 2 s limit
     * called it a blocked loop in every demo. A loop blocked for longer than 10 s is still reported.
     */
    public static VertxOptions vertxOptions() {
        return new VertxOptions().setMaxEventLoopExecuteTime(10).setMaxEventLoopExecuteTimeUnit(TimeUnit.SECONDS);
    }

    /**
     * A Vert.x on io_uring when the kernel and the native library allow it, else on NIO; says which.
     * Unix sockets get NIO: Vert.x 5.0.10's io_uring transport rejects domain socket addresses.
     */
    static Vertx createVertx(boolean tcp) {
        Transport transport = Transport.NIO;
        if (!tcp) {
            log.info("unix socket: using the NIO transport (Vert.x's io_uring transport has no unix sockets)");
        } else if (Transport.IO_URING.available()) {
            transport = Transport.IO_URING;
        } else {
            log.info("io_uring transport unavailable ({}); using NIO", String.valueOf(Transport.IO_URING.unavailabilityCause()));
        }
        return Vertx.builder().with(vertxOptions()).withTransport(transport).build();
    }


    /** The TCP port listened on (the real one when the config asked for port 0); -1 on a unix socket. */
    public int port() {
        return config.unixSocket() == null ? verticle.port() : -1;
    }

    /** Connections accepted since start; shows whether a client used several (multi-conn). */
    public long connectionsAccepted() {
        return verticle.connectionsAccepted();
    }

    public Path unixSocket() {
        return config.unixSocket();
    }

    /** "io_uring" or "nio". */
    public String transport() {
        return vertx.isNativeTransportEnabled() ? "io_uring" : "nio";
    }

    /** The NBD URI of an export, for clients such as nbdinfo, nbdcopy and qemu-img. */
    public String uri(String export) {
        String scheme = config.tls().mode() == io.nbdgate.protocol.server.ServerHandshake.Tls.REQUIRE ? "nbds" : "nbd";
        if (config.unixSocket() != null) return scheme + "+unix:///" + export + "?socket=" + config.unixSocket();
        String host = config.host().contains(":") ? "[" + config.host() + "]" : config.host();
        return scheme + "://" + host + ":" + port() + "/" + export;
    }

    /** Where it listens, for the one line a user sees. */
    public String where() {
        return config.unixSocket() != null ? "unix:" + config.unixSocket() : config.host() + ":" + port();
    }

    /** Stops listening, drops connections, closes the backends (file exports are fsynced by close). */
    @Override
    public void close() throws Exception {
        try {
            vertx.undeploy(deploymentId).await(30, TimeUnit.SECONDS);
        } finally {
            if (ownsVertx) vertx.close().await(30, TimeUnit.SECONDS);
            for (Export e : config.exports()) e.close();
        }
    }
}
