package io.nbdgate.gateway.nbd.server;

import io.nbdgate.gateway.tls.ServerCredentials;
import io.nbdgate.protocol.server.ServerHandshake;

/**
 * TLS on the embedded server: off, offered, or required, and what it proves itself with.
 *
 * @param mode        OFF: STARTTLS refused; ON: accepted; REQUIRE: nothing but STARTTLS before it
 * @param credentials certificate and key, or PSKs; null when OFF
 */
public record ServerTls(ServerHandshake.Tls mode, ServerCredentials credentials) {
    public static final ServerTls OFF = new ServerTls(ServerHandshake.Tls.OFF, null);

    public ServerTls {
        if ((mode == ServerHandshake.Tls.OFF) != (credentials == null)) {
            throw new IllegalArgumentException("TLS " + mode + " with" + (credentials == null ? "out" : "") + " credentials");
        }
    }
}
