package io.nbdgate.gateway.cli;

import io.nbdgate.gateway.tls.TlsSettings;
import java.nio.file.Path;
import picocli.CommandLine.Option;

/** The TLS flags of every command that connects to an NBD server; each says what a URI parameter says. */
final class TlsFlags {

    @Option(names = "--tls-certificates", paramLabel = "DIR",
            description = "nbds:// with X.509: the directory with ca-cert.pem (the CA that signed the server's "
                    + "certificate; default: the system's CAs) and, for a client certificate, client-cert.pem and "
                    + "client-key.pem. The URI's tls-certificates=DIR says the same.")
    Path certificates;

    @Option(names = "--tls-psk-file", paramLabel = "FILE",
            description = "nbds:// with a pre-shared key: the file of identity:hexkey lines (as nbdkit --tls-psk "
                    + "and psktool use). The URI's tls-psk-file=FILE says the same.")
    Path pskFile;

    @Option(names = "--tls-username", paramLabel = "NAME",
            description = "The PSK identity (default: the URI's user, nbds://NAME@HOST/..., else the local user name).")
    String username;

    @Option(names = "--tls-hostname", paramLabel = "NAME",
            description = "The name the server's certificate must carry (default: the URI's host; needed for "
                    + "nbds+unix:// and nbds+vsock://). The URI's tls-hostname=NAME says the same.")
    String hostname;

    @Option(names = "--no-tls-verify-peer",
            description = "Do not check the server's certificate (anyone in the middle can then read and change "
                    + "the data). The URI's tls-verify-peer=0 says the same.")
    boolean noVerifyPeer;

    /** The flags given; a URI's own settings are merged with them. */
    TlsSettings settings() {
        return new TlsSettings(null, hostname, noVerifyPeer ? Boolean.FALSE : null, certificates, pskFile, username);
    }
}
