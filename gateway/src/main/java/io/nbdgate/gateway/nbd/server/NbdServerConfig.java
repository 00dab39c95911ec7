package io.nbdgate.gateway.nbd.server;

import java.nio.file.Path;
import java.util.List;

/**
 * Where the embedded server listens and what it serves. With {@code unixSocket} set, host and
 * port are ignored. Port 0 picks a free port ({@link EmbeddedNbdServer#port()} tells which). The
 * first export is also the default export (the empty name).
 */
public record NbdServerConfig(String host, int port, Path unixSocket, List<Export> exports, ServerTls tls) {
    public static final int DEFAULT_PORT = 10809;

    public NbdServerConfig(String host, int port, Path unixSocket, List<Export> exports) {
        this(host, port, unixSocket, exports, ServerTls.OFF);
    }

    /** The same server with TLS. */
    public NbdServerConfig withTls(ServerTls t) {
        return new NbdServerConfig(host, port, unixSocket, exports, t);
    }

    public NbdServerConfig {
        exports = List.copyOf(exports);
        if (exports.isEmpty()) throw new IllegalArgumentException("at least one export is needed");
        if (exports.stream().map(Export::name).distinct().count() != exports.size()) {
            throw new IllegalArgumentException("export names must be unique");
        }
        if (unixSocket == null && (port < 0 || port > 65535)) throw new IllegalArgumentException("port " + port + " is not in 0..65535");
    }

    public static NbdServerConfig tcp(String host, int port, List<Export> exports) {
        return new NbdServerConfig(host, port, null, exports);
    }

    public static NbdServerConfig unix(Path socket, List<Export> exports) {
        return new NbdServerConfig(null, 0, socket, exports);
    }
}
