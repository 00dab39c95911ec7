package io.nbdgate.gateway.nbd.server;

import io.nbdgate.gateway.tls.ServerCredentials;
import io.nbdgate.protocol.server.ServerHandshake;

/**
 * TLS on the embedded server: off, offered, or required, and what it proves itself with.
 *
 * @param mode        OFF: STARTTLS refused; ON: accepted; REQUIRE: nothing but STARTTLS before it
 * @param credentials certificate and key, or PSKs; null when OFF
 * @param keyUpdateBytes TLS 1.3: after this many bytes sent on a connection, new keys in both directions
 *                    (KeyUpdate, update_requested); 0: only where the TLS library's record limits call for it
 */
public record ServerTls(ServerHandshake.Tls mode, ServerCredentials credentials, long keyUpdateBytes) {
    public static final ServerTls OFF = new ServerTls(ServerHandshake.Tls.OFF, null);

    public ServerTls(ServerHandshake.Tls mode, ServerCredentials credentials) {
        this(mode, credentials, 0);
    }

    public ServerTls {
        if (keyUpdateBytes < 0) {
            throw new IllegalArgumentException("keyUpdateBytes " + keyUpdateBytes + " < 0");
        }
        if ((mode == ServerHandshake.Tls.OFF) != (credentials == null)) {
            throw new IllegalArgumentException("TLS " + mode + " with" + (credentials == null ? "out" : "") + " credentials");
        }
    }
}
