package io.nbdgate.gateway.cli;

import io.nbdgate.gateway.nbd.client.NbdClient;
import io.nbdgate.gateway.tls.TlsSettings;
import java.nio.file.Path;
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

    @Option(names = "--tls-certificates", paramLabel = "DIR",
            description = "nbds:// with X.509: the directory with ca-cert.pem (the CA that signed the server's "
                    + "certificate; default: the system's CAs) and, for a client certificate, client-cert.pem and "
                    + "client-key.pem. The URI's tls-certificates=DIR says the same.")
    Path tlsCertificates;

    @Option(names = "--tls-psk-file", paramLabel = "FILE",
            description = "nbds:// with a pre-shared key: the file of identity:hexkey lines (as nbdkit --tls-psk "
                    + "and psktool use). The URI's tls-psk-file=FILE says the same.")
    Path tlsPskFile;

    @Option(names = "--tls-username", paramLabel = "NAME",
            description = "The PSK identity (default: the URI's user, nbds://NAME@HOST/..., else the local user name).")
    String tlsUsername;

    @Option(names = "--tls-hostname", paramLabel = "NAME",
            description = "The name the server's certificate must carry (default: the URI's host; needed for "
                    + "nbds+unix:// and nbds+vsock://). The URI's tls-hostname=NAME says the same.")
    String tlsHostname;

    @Option(names = "--no-tls-verify-peer",
            description = "Do not check the server's certificate (anyone in the middle can then read and change "
                    + "the data). The URI's tls-verify-peer=0 says the same.")
    boolean noTlsVerifyPeer;

    /** The TLS flags given; the URI's own settings are merged with them. */
    TlsSettings tlsSettings() {
        return new TlsSettings(null, tlsHostname, noTlsVerifyPeer ? Boolean.FALSE : null, tlsCertificates,
                tlsPskFile, tlsUsername);
    }

    NbdClient.Options toOptions() {
        return new NbdClient.Options(!noExtendedHeaders && !noStructuredReplies, !noStructuredReplies,
                Math.max(1, connectTimeoutSeconds) * 1000, 16, 60_000);
    }
}
