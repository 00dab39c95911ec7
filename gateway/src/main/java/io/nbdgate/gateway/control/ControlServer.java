package io.nbdgate.gateway.control;

import io.nbdgate.gateway.config.ConfigException;
import io.nbdgate.gateway.config.DaemonConfig;
import io.nbdgate.gateway.config.DeviceConfig;
import io.nbdgate.gateway.device.DetachMode;
import io.nbdgate.gateway.device.NbdDevice;
import io.nbdgate.gateway.metrics.Metrics;
import io.vertx.core.Future;
import io.vertx.core.Vertx;
import io.vertx.core.http.HttpServer;
import io.vertx.core.http.HttpServerRequest;
import io.vertx.core.json.JsonArray;
import io.vertx.core.json.JsonObject;
import io.vertx.core.net.SocketAddress;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Optional;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The control socket of one nbdgate process, {@code /run/nbdgate/<pid>.sock}: a small HTTP API that
 * {@code nbdgate list} and {@code nbdgate detach} use. GET /devices lists; POST /detach?device=X[&mode=M]
 * detaches: 200 when the device is gone, 202 when a deferred detach waits for its last user, 409 with the
 * holders when it is in use and the mode is refuse (the default; {@link DetachMode}). POST /reload runs the
 * daemon's reload (409 in an attach process) and answers its lines; POST /handover leaves every device to the
 * next daemon and ends the process (412, nothing changed, when a device could not be taken over). POST
 * /resize?device=X[&shrink=true] gives a device its export's current size (409 with the reason when refused).
 * POST /attach with one device's settings as JSON (the YAML's keys) attaches it in a daemon: 200 with its
 * device, 400 for bad settings, 422 when it could not be attached.
 * Only root and the daemon's own user may use it ({@link ControlSocketAccess}); anyone else gets 403.
 */
public final class ControlServer {
    private static final Logger LOG = LoggerFactory.getLogger(ControlServer.class);

    /** Where every serving nbdgate process puts its socket: {@link ControlClient#runDir()}. */
    public static Path runDir() {
        return ControlClient.runDir();
    }

    private final Vertx vertx;
    private final DeviceRegistry registry;
    private final DaemonHooks daemon;
    private final Path socket;
    private HttpServer server;
    private HttpServer status;
    private ControlSocketAccess access;

    public ControlServer(Vertx vertx, DeviceRegistry registry) {
        this(vertx, registry, null);
    }

    /** @param daemon what only a daemon does (reload, handover); null in an attach process */
    public ControlServer(Vertx vertx, DeviceRegistry registry, DaemonHooks daemon) {
        this.vertx = vertx;
        this.registry = registry;
        this.daemon = daemon;
        this.socket = runDir().resolve(ProcessHandle.current().pid() + ".sock");
    }

    public Future<Void> start() {
        try {
            access = ControlSocketAccess.prepare(socket.getParent());
            Files.deleteIfExists(socket);
        } catch (IOException e) {
            return Future.failedFuture("cannot create the control socket " + socket + ": " + e.getMessage());
        }
        server = vertx.createHttpServer().requestHandler(this::handleLocal);
        return server.listen(SocketAddress.domainSocketAddress(socket.toString())).compose(s -> {
            try {
                ControlSocketAccess.restrict(socket);
                return Future.<Void>succeededFuture();
            } catch (IOException e) {
                server.close();
                return Future.failedFuture("cannot make the control socket " + socket + " mode 0600: " + e);
            }
        });
    }

    /** The control socket's path. */
    public Path socket() {
        return socket;
    }

    private void handleLocal(HttpServerRequest req) {
        String refusal = access.refusal(req.connection());
        if (refusal != null) {
            LOG.warn("control socket: refused {} {}: {}", req.method(), req.path(), refusal);
            req.response().setStatusCode(403).putHeader("content-type", "application/json")
                    .end(new JsonObject().put("error", refusal).encode());
            return;
        }
        handle(req);
    }

    /**
     * Also answers GET /devices, GET /health and GET /metrics (Prometheus text) on HOST:PORT, for monitoring.
     * Read-only: detaching stays on the unix socket, which only root can reach.
     */
    public Future<Void> listenStatus(String hostPort) {
        int colon = hostPort.lastIndexOf(':');
        String host = hostPort.substring(0, colon);
        int port = Integer.parseInt(hostPort.substring(colon + 1));
        Metrics metrics = registry.metrics(); // now: the JVM binders count GC pauses from when they are bound
        status = vertx.createHttpServer().requestHandler(req -> {
            if (!req.method().name().equals("GET")) {
                req.response().setStatusCode(405).end();
            } else if (req.path().equals("/health")) {
                boolean ok = registry.all().stream().allMatch(NbdDevice::healthy);
                req.response().setStatusCode(ok ? 200 : 503).end(ok ? "ok\n" : "degraded\n");
            } else if (req.path().equals("/metrics")) {
                // Off the event loop: the JVM binders' MXBean calls (all threads' states) take a while.
                vertx.executeBlocking(metrics::scrape, false).onComplete(r -> {
                    if (r.failed()) {
                        req.response().setStatusCode(500).end("scrape failed: " + r.cause() + "\n");
                    } else {
                        req.response().putHeader("content-type", Metrics.CONTENT_TYPE).end(r.result());
                    }
                });
            } else {
                handle(req);
            }
        });
        return status.listen(port, host).mapEmpty();
    }

    /** The status listener's port (the one chosen when asked for port 0); -1 without one. */
    public int statusPort() {
        return status == null ? -1 : status.actualPort();
    }

    private void handle(HttpServerRequest req) {
        if (req.method().name().equals("GET") && req.path().equals("/devices")) {
            req.response().putHeader("content-type", "application/json").end(registry.toJson().encode());
        } else if (req.method().name().equals("POST") && req.path().equals("/detach")) {
            Optional<NbdDevice> d = device(req);
            if (d.isEmpty()) {
                return;
            }
            NbdDevice device = d.get();
            DetachMode mode;
            try {
                mode = DetachMode.of(req.params().get("mode") == null ? "refuse" : req.getParam("mode"));
            } catch (IllegalArgumentException e) {
                req.response().setStatusCode(400).end(new JsonObject().put("error", e.getMessage()).encode());
                return;
            }
            // Stopping a device waits for its queues: never on the event loop.
            vertx.executeBlocking(() -> Optional.ofNullable(device.detach(mode)), false).onComplete(r -> {
                JsonObject body = new JsonObject().put("name", device.name());
                if (r.failed()) {
                    req.response().setStatusCode(500).end(body.put("error", "detaching " + device.name() + ": "
                            + r.cause().getMessage()).encode());
                } else if (r.result().isPresent()) {
                    req.response().setStatusCode(409).end(body.put("error", r.result().get()
                            + " (--force removes it now, --deferred once it is closed)").encode());
                } else if (device.gone().isDone()) {
                    registry.remove(device.name()); // also a device another process removed: it was listed
                    req.response().setStatusCode(200).end(body.put("detached", device.blockDevice()).encode());
                } else {
                    req.response().setStatusCode(202).end(body.put("pending", device.blockDevice()).encode());
                }
            });
        } else if (req.method().name().equals("POST") && req.path().equals("/resize")) {
            Optional<NbdDevice> d = device(req);
            if (d.isEmpty()) {
                return;
            }
            boolean shrink = "true".equals(req.getParam("shrink"));
            // A handshake with the server and a control command: never on the event loop.
            vertx.executeBlocking(() -> d.get().resize(shrink), false).onComplete(r -> {
                JsonObject body = new JsonObject().put("name", d.get().name());
                if (r.succeeded()) {
                    req.response().setStatusCode(200).end(body.put("line", r.result()).encode());
                } else {
                    req.response().setStatusCode(r.cause() instanceof NbdDevice.ResizeException ? 409 : 500)
                            .end(body.put("error", r.cause().getMessage()).encode());
                }
            });
        } else if (req.method().name().equals("POST") && req.path().equals("/attach")) {
            if (daemon == null) {
                notADaemon(req);
                return;
            }
            req.body().onComplete(b -> {
                DeviceConfig config;
                try {
                    JsonObject device = b.result().toJsonObject();
                    config = DaemonConfig.from(new JsonObject()
                            .put("devices", new JsonArray().add(device))).devices().getFirst();
                } catch (RuntimeException | ConfigException e) {
                    req.response().setStatusCode(400).end(new JsonObject().put("error", "attach: "
                            + (b.failed() ? b.cause().getMessage() : e.getMessage())).encode());
                    return;
                }
                // Connecting and creating the device block: never on the event loop.
                vertx.executeBlocking(() -> daemon.attach().apply(config), false).onComplete(r -> {
                    JsonObject body = new JsonObject().put("name", config.name());
                    if (r.succeeded()) {
                        req.response().setStatusCode(200).end(body.put("device", r.result()).encode());
                    } else {
                        req.response().setStatusCode(422).end(body.put("error", r.cause().getMessage()).encode());
                    }
                });
            });
        } else if (req.method().name().equals("POST") && req.path().equals("/reload")) {
            if (daemon == null) {
                notADaemon(req);
                return;
            }
            vertx.executeBlocking(daemon.reload()::get, false).onComplete(r -> {
                if (r.failed()) {
                    req.response().setStatusCode(500).end(new JsonObject().put("error", "reload: "
                            + r.cause().getMessage()).encode());
                    return;
                }
                req.response().setStatusCode(200).end(lines(r.result()).encode());
            });
        } else if (req.method().name().equals("POST") && req.path().equals("/handover")) {
            if (daemon == null) {
                notADaemon(req);
                return;
            }
            vertx.executeBlocking(daemon.handover()::get, false).onComplete(r -> {
                if (r.failed()) {
                    // 412, not 409: 409 is "not a daemon", which a client skips.
                    req.response().setStatusCode(412).end(new JsonObject().put("error", r.cause().getMessage())
                            .encode());
                    return;
                }
                // The answer first: the process ends right after it.
                req.response().setStatusCode(200).end(lines(r.result()).encode())
                        .onComplete(x -> daemon.exitAfterHandover().run());
            });
        } else {
            req.response().setStatusCode(404).end();
        }
    }

    /** The device the request's {@code device} parameter names; empty once a 404 has answered. */
    private Optional<NbdDevice> device(HttpServerRequest req) {
        String which = req.getParam("device");
        Optional<NbdDevice> d = which == null ? Optional.empty() : registry.find(which);
        if (d.isEmpty()) {
            req.response().setStatusCode(404).end(new JsonObject().put("error", "no device " + which).encode());
        }
        return d;
    }

    private static void notADaemon(HttpServerRequest req) {
        req.response().setStatusCode(409).end(new JsonObject().put("error",
                "this nbdgate process serves no config file (attach)").encode());
    }

    private static JsonArray lines(List<String> lines) {
        JsonArray a = new JsonArray();
        lines.forEach(l -> a.add(new JsonObject().put("line", l)));
        return a;
    }

    public void stop() {
        if (server != null) {
            server.close();
        }
        if (status != null) {
            status.close();
            registry.closeMetrics();
        }
        try {
            Files.deleteIfExists(socket);
        } catch (IOException e) {
            // best effort: list ignores sockets nobody answers on
        }
    }
}
