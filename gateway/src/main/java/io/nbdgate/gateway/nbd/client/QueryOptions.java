package io.nbdgate.gateway.nbd.client;

import io.nbdgate.protocol.client.HandshakeConfig;

/**
 * What {@link NbdQuery} asks of a server ({@code nbdgate info}, {@code nbdgate list URI}).
 *
 * @param extendedHeaders      try NBD_OPT_EXTENDED_HEADERS
 * @param structuredReplies    try NBD_OPT_STRUCTURED_REPLY if extended headers are off or refused
 * @param connectTimeoutMillis the connect, TLS and handshake must be done within this
 */
public record QueryOptions(boolean extendedHeaders, boolean structuredReplies, int connectTimeoutMillis) {
    /** The handshake that attaches to {@code uri}'s export with these options. */
    public HandshakeConfig handshakeConfig(NbdUri uri) {
        return new HandshakeConfig(uri.exportName(), HandshakeConfig.Goal.GO, uri.tls(), extendedHeaders,
                structuredReplies);
    }
}
