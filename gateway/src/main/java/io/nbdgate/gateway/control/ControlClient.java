package io.nbdgate.gateway.control;

import io.vertx.core.Future;
import io.vertx.core.Vertx;
import io.vertx.core.http.HttpClientOptions;
import io.vertx.core.http.HttpMethod;
import io.vertx.core.http.RequestOptions;
import io.vertx.core.json.JsonArray;
import io.vertx.core.json.JsonObject;
import io.vertx.core.net.SocketAddress;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.Stream;

/** Talks to the control sockets of the nbdgate processes on this machine. */
public final class ControlClient {
    private static final long TIMEOUT_MS = 60_000;

    private ControlClient() {
    }

    /**
     * Every device every live nbdgate process serves. Sockets nobody listens on (left by a killed process) are
     * skipped; a socket that refuses us (not root) fails the whole answer, which would otherwise look empty.
     */
    public static Future<List<JsonObject>> devices(Vertx vertx) {
        List<Future<JsonArray>> asks = new ArrayList<>();
        for (Path s : sockets()) {
            asks.add(call(vertx, s, HttpMethod.GET, "/devices").map(JsonArray::new)
                    .recover(e -> stale(e) ? Future.succeededFuture(new JsonArray())
                            : Future.failedFuture("control socket " + s + ": " + e.getMessage())));
        }
        return Future.all(asks).map(all -> {
            List<JsonObject> out = new ArrayList<>();
            for (Future<JsonArray> f : asks) {
                f.result().forEach(o -> out.add((JsonObject) o));
            }
            return out;
        });
    }

    /** Detaches the device named {@code which} (a name or /dev/ublkbN), wherever it is served. */
    public static Future<JsonObject> detach(Vertx vertx, String which) {
        return devices(vertx).compose(all -> {
            for (JsonObject d : all) {
                if (which.equals(d.getString("name")) || which.equals(d.getString("device"))) {
                    Path s = ControlServer.runDir().resolve(d.getLong("pid") + ".sock");
                    return call(vertx, s, HttpMethod.POST, "/detach?device=" + java.net.URLEncoder.encode(which,
                            java.nio.charset.StandardCharsets.UTF_8)).map(JsonObject::new);
                }
            }
            return Future.failedFuture("no nbdgate process serves a device named '" + which + "' (see nbdgate list)");
        });
    }

    private static boolean stale(Throwable e) {
        String m = String.valueOf(e.getMessage());
        return m.contains("Connection refused") || m.contains("No such file");
    }

    private static List<Path> sockets() {
        try (Stream<Path> s = Files.list(ControlServer.runDir())) {
            return s.filter(p -> p.getFileName().toString().endsWith(".sock")).toList();
        } catch (IOException e) {
            return List.of();
        }
    }

    private static Future<String> call(Vertx vertx, Path socket, HttpMethod method, String uri) {
        var client = vertx.createHttpClient(new HttpClientOptions());
        return client.request(new RequestOptions().setServer(SocketAddress.domainSocketAddress(socket.toString()))
                        .setMethod(method).setURI(uri).setHost("localhost").setTimeout(TIMEOUT_MS))
                .compose(req -> req.send().compose(resp -> resp.body().map(b -> {
                    if (resp.statusCode() != 200) {
                        String error = new JsonObject(b.toString()).getString("error", "status " + resp.statusCode());
                        throw new IllegalStateException(error);
                    }
                    return b.toString();
                })))
                .eventually(client::close);
    }
}
