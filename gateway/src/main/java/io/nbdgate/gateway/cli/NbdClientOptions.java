package io.nbdgate.gateway.cli;

import io.nbdgate.gateway.nbd.client.QueryOptions;
import io.nbdgate.gateway.tls.TlsSettings;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

/** Handshake options shared by the commands that connect to an NBD server. */
final class NbdClientOptions {

    @Option(names = "--no-extended-headers",
            description = "Do not ask for NBD_OPT_EXTENDED_HEADERS (32-byte headers, 64-bit lengths); "
                    + "by default they are used when the server offers them.")
    boolean noExtendedHeaders;

    @Option(names = "--no-structured-replies",
            description = "Do not ask for NBD_OPT_STRUCTURED_REPLY either: simple replies only, "
                    + "as the oldest servers speak.")
    boolean noStructuredReplies;

    @Option(names = "--connect-timeout", paramLabel = "SECONDS", defaultValue = "10",
            description = "Give up connecting after this many seconds (default: ${DEFAULT-VALUE}).")
    int connectTimeoutSeconds;

    @Mixin
    TlsFlags tls;

    /** The TLS flags given; the URI's own settings are merged with them. */
    TlsSettings tlsSettings() {
        return tls.settings();
    }

    QueryOptions toOptions() {
        return new QueryOptions(!noExtendedHeaders && !noStructuredReplies, !noStructuredReplies,
                Math.max(1, connectTimeoutSeconds) * 1000);
    }
}
