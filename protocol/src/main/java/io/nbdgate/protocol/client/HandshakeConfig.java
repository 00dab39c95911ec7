package io.nbdgate.protocol.client;

/**
 * What the client asks for in the handshake.
 *
 * @param exportName        export to attach (empty = the server's default export); ignored when listing
 * @param goal              attach to the export, or list the server's exports
 * @param tls               run NBD_OPT_STARTTLS first; the caller runs TLS on {@link HandshakeAction.UpgradeToTls}
 * @param extendedHeaders   try NBD_OPT_EXTENDED_HEADERS (64-bit lengths, 32-byte headers)
 * @param structuredReplies try NBD_OPT_STRUCTURED_REPLY when extended headers are off or refused
 */
public record HandshakeConfig(String exportName, Goal goal, boolean tls, boolean extendedHeaders,
                              boolean structuredReplies) {

    public enum Goal { GO, LIST }

    public HandshakeConfig {
        if (exportName == null) {
            exportName = "";
        }
    }

    /** Attach to {@code exportName} with every feature this client supports, without TLS. */
    public static HandshakeConfig go(String exportName) {
        return new HandshakeConfig(exportName, Goal.GO, false, true, true);
    }

    /** Enter transmission with simple replies only: neither extended headers nor structured replies. */
    public static HandshakeConfig goSimple(String exportName) {
        return new HandshakeConfig(exportName, Goal.GO, false, false, false);
    }

    /** List exports, without TLS. */
    public static HandshakeConfig list() {
        return new HandshakeConfig("", Goal.LIST, false, false, false);
    }
}
