package io.nbdgate.gateway.tls;

/**
 * What an established TLS connection is, for logs, status and {@code list}.
 *
 * @param version TLS version ("TLSv1.3")
 * @param cipher  cipher suite
 * @param peer    the server's certificate subject ("CN=..."), or "psk:IDENTITY"; null when unverified and unknown
 */
public record TlsDescription(String version, String cipher, String peer) {
    @Override
    public String toString() {
        return version + " " + cipher + (peer == null ? "" : " " + peer);
    }
}
