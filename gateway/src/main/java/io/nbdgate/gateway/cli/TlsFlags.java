package io.nbdgate.gateway.cli;

import io.nbdgate.gateway.tls.TlsSettings;
import java.nio.file.Path;
import picocli.CommandLine.Model.CommandSpec;

import static io.nbdgate.gateway.cli.CommandModel.flag;
import static io.nbdgate.gateway.cli.CommandModel.option;

/** The TLS flags of every command that connects to an NBD server; each says what a URI parameter says. */
final class TlsFlags {

    Path certificates;
    Path pskFile;
    String username;
    String hostname;
    boolean noVerifyPeer;

    /** Adds the flags to a command's model. */
    void addTo(CommandSpec spec) {
        spec.addOption(option("--tls-certificates", Path.class, v -> certificates = v).paramLabel("DIR")
                .description("nbds:// with X.509: the directory with ca-cert.pem (the CA that signed the server's "
                        + "certificate; default: the system's CAs) and, for a client certificate, client-cert.pem and "
                        + "client-key.pem. The URI's tls-certificates=DIR says the same.").build());
        spec.addOption(option("--tls-psk-file", Path.class, v -> pskFile = v).paramLabel("FILE")
                .description("nbds:// with a pre-shared key: the file of identity:hexkey lines (as nbdkit --tls-psk "
                        + "and psktool use). The URI's tls-psk-file=FILE says the same.").build());
        spec.addOption(option("--tls-username", String.class, v -> username = v).paramLabel("NAME")
                .description("The PSK identity (default: the URI's user, nbds://NAME@HOST/..., else the local user "
                        + "name).").build());
        spec.addOption(option("--tls-hostname", String.class, v -> hostname = v).paramLabel("NAME")
                .description("The name the server's certificate must carry (default: the URI's host; needed for "
                        + "nbds+unix:// and nbds+vsock://). The URI's tls-hostname=NAME says the same.").build());
        spec.addOption(flag("--no-tls-verify-peer", v -> noVerifyPeer = v)
                .description("Do not check the server's certificate (anyone in the middle can then read and change "
                        + "the data). The URI's tls-verify-peer=0 says the same.").build());
    }

    /** The flags given; a URI's own settings are merged with them. */
    TlsSettings settings() {
        return new TlsSettings(null, hostname, noVerifyPeer ? Boolean.FALSE : null, certificates, pskFile, username);
    }
}
