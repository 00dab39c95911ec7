package io.nbdgate.gateway.cli;

import io.nbdgate.gateway.nbd.client.QueryOptions;
import io.nbdgate.gateway.tls.TlsSettings;
import picocli.CommandLine.Model.CommandSpec;

import static io.nbdgate.gateway.cli.CommandModel.flag;
import static io.nbdgate.gateway.cli.CommandModel.option;

/** Handshake options shared by the commands that connect to an NBD server. */
final class NbdClientOptions {

    private boolean noExtendedHeaders;
    private boolean noStructuredReplies;
    private int connectTimeoutSeconds;
    private final TlsFlags tls = new TlsFlags();

    /** Adds the options, the TLS flags included, to a command's model. */
    void addTo(CommandSpec spec) {
        spec.addOption(flag("--no-extended-headers", v -> noExtendedHeaders = v)
                .description("Do not ask for NBD_OPT_EXTENDED_HEADERS (32-byte headers, 64-bit lengths); "
                        + "by default they are used when the server offers them.").build());
        spec.addOption(flag("--no-structured-replies", v -> noStructuredReplies = v)
                .description("Do not ask for NBD_OPT_STRUCTURED_REPLY either: simple replies only, "
                        + "as the oldest servers speak.").build());
        spec.addOption(option("--connect-timeout", int.class, v -> connectTimeoutSeconds = v).paramLabel("SECONDS")
                .defaultValue("10")
                .description("Give up connecting after this many seconds (default: ${DEFAULT-VALUE}).").build());
        tls.addTo(spec);
    }

    /** The TLS flags given; the URI's own settings are merged with them. */
    TlsSettings tlsSettings() {
        return tls.settings();
    }

    QueryOptions toOptions() {
        return new QueryOptions(!noExtendedHeaders && !noStructuredReplies, !noStructuredReplies,
                Math.max(1, connectTimeoutSeconds) * 1000);
    }
}
