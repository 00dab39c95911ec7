package io.nbdgate.gateway.tls;

import java.nio.file.Files;
import java.nio.file.Path;
import java.security.cert.X509Certificate;
import java.util.List;
import java.util.Map;
import org.bouncycastle.crypto.params.AsymmetricKeyParameter;

/**
 * What the embedded server ({@code nbdgate serve}) proves itself with, read before it listens: its certificate
 * chain and key from a directory laid out as nbdkit's (server-cert.pem, server-key.pem), or a PSK file of
 * {@code identity:hexkey} lines, any of whose identities may connect.
 */
public sealed interface ServerCredentials {
    record X509(List<X509Certificate> chain, AsymmetricKeyParameter key, Path from) implements ServerCredentials {
    }

    record Psk(Map<String, byte[]> keys, Path from) implements ServerCredentials {
    }

    static ServerCredentials certificates(Path dir) {
        if (!Files.isDirectory(dir)) {
            throw new TlsException("TLS certificates directory " + dir + " does not exist");
        }
        List<X509Certificate> chain = ClientCredentials.certificates(dir.resolve("server-cert.pem"));
        if (chain.isEmpty()) {
            throw new TlsException(dir.resolve("server-cert.pem") + " holds no certificate");
        }
        return new X509(chain, ClientCredentials.privateKey(dir.resolve("server-key.pem")), dir);
    }

    static ServerCredentials psk(Path file) {
        Map<String, byte[]> keys = PskFile.read(file);
        if (keys.isEmpty()) {
            throw new TlsException("PSK file " + file + " has no identity:hexkey line");
        }
        return new Psk(keys, file);
    }
}
