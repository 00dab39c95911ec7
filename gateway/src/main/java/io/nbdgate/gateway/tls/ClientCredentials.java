package io.nbdgate.gateway.tls;

import java.io.IOException;
import java.io.InputStream;
import java.io.Reader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.security.cert.CertificateException;
import java.security.cert.CertificateFactory;
import java.security.cert.X509Certificate;
import java.util.List;
import org.bouncycastle.asn1.pkcs.PrivateKeyInfo;
import org.bouncycastle.crypto.params.AsymmetricKeyParameter;
import org.bouncycastle.crypto.util.PrivateKeyFactory;
import org.bouncycastle.openssl.PEMKeyPair;
import org.bouncycastle.openssl.PEMParser;

/**
 * What a TLS handshake authenticates with, read from files before connecting so that a missing or broken file
 * is one clear error and not a failed handshake: trusted CAs and an optional client certificate (X.509), or the
 * pre-shared key of one identity (PSK). Files are laid out as libnbd and nbdkit lay them out.
 */
public sealed interface ClientCredentials {
    /** Debian's bundle of the system's trusted CAs, used when the certificates directory has no ca-cert.pem. */
    Path SYSTEM_CAS = Path.of("/etc/ssl/certs/ca-certificates.crt");

    /** X.509: the CAs that may sign the server's certificate, and our own certificate chain and key, if any. */
    record X509(List<X509Certificate> trusted, Path trustedFrom, List<X509Certificate> clientChain,
                AsymmetricKeyParameter clientKey, boolean verifyPeer, String hostname) implements ClientCredentials {
    }

    /** A pre-shared key: the identity sent to the server and the key both sides hold. */
    record Psk(String identity, byte[] key, Path from) implements ClientCredentials {
    }

    /** Reads the files {@code settings} names; {@code hostname} is what the server's certificate must carry. */
    public static ClientCredentials load(TlsSettings settings, String hostname) {
        if (settings.effectiveType() == TlsSettings.Type.PSK) {
            if (settings.pskFile() == null) {
                throw new TlsException("tls-type=psk needs a key file (tls-psk-file, --tls-psk-file)");
            }
            String identity = settings.username() != null ? settings.username() : System.getProperty("user.name");
            return new Psk(identity, pskKey(settings.pskFile(), identity), settings.pskFile());
        }
        Path dir = settings.certificates();
        Path ca = settings.caFile() != null ? settings.caFile()
                : dir != null && Files.exists(dir.resolve("ca-cert.pem")) ? dir.resolve("ca-cert.pem") : SYSTEM_CAS;
        if (dir != null && !Files.isDirectory(dir)) {
            throw new TlsException("TLS certificates directory " + dir + " does not exist");
        }
        boolean verify = settings.effectiveVerifyPeer();
        List<X509Certificate> trusted = verify ? certificates(ca) : List.of();
        if (verify && trusted.isEmpty()) {
            throw new TlsException(ca + " holds no certificate");
        }
        List<X509Certificate> chain = List.of();
        AsymmetricKeyParameter key = null;
        if ((settings.certFile() == null) != (settings.keyFile() == null)) {
            throw new TlsException(settings.certFile() == null ? "tls-client-key needs tls-client-certificate"
                    : "tls-client-certificate needs tls-client-key");
        }
        if (settings.certFile() != null) {
            chain = certificates(settings.certFile());
            key = privateKey(settings.keyFile());
        } else if (dir != null && Files.exists(dir.resolve("client-cert.pem"))) {
            chain = certificates(dir.resolve("client-cert.pem"));
            key = privateKey(dir.resolve("client-key.pem"));
        }
        if (verify && hostname == null) {
            throw new TlsException("no host name to check the server's certificate against: give tls-hostname"
                    + " (--tls-hostname), or tls-verify-peer=0 to skip the check");
        }
        return new X509(trusted, ca, chain, key, verify, hostname);
    }

    static List<X509Certificate> certificates(Path file) {
        try (InputStream in = Files.newInputStream(file)) {
            return CertificateFactory.getInstance("X.509").generateCertificates(in).stream()
                    .map(c -> (X509Certificate) c).toList();
        } catch (NoSuchFileException e) {
            throw new TlsException("certificate file " + file + " does not exist");
        } catch (IOException | CertificateException e) {
            throw new TlsException("cannot read certificates from " + file + ": " + e.getMessage(), e);
        }
    }

    static AsymmetricKeyParameter privateKey(Path file) {
        try (Reader r = Files.newBufferedReader(file, StandardCharsets.US_ASCII); PEMParser pem = new PEMParser(r)) {
            Object o = pem.readObject();
            PrivateKeyInfo info = switch (o) {
                case PEMKeyPair pair -> pair.getPrivateKeyInfo();
                case PrivateKeyInfo i -> i;
                case null -> throw new TlsException(file + " holds no private key");
                default -> throw new TlsException(file + " holds a " + o.getClass().getSimpleName()
                        + ", not an unencrypted private key (PKCS#8 or PKCS#1/SEC1 PEM)");
            };
            return PrivateKeyFactory.createKey(info);
        } catch (NoSuchFileException e) {
            throw new TlsException("the certificate's key " + file + " does not exist");
        } catch (IOException e) {
            throw new TlsException("cannot read the private key in " + file + ": " + e.getMessage(), e);
        }
    }

    /** The key of {@code identity} in an {@code identity:hexkey} file. */
    static byte[] pskKey(Path file, String identity) {
        byte[] key = PskFile.read(file).get(identity);
        if (key == null) {
            throw new TlsException("PSK file " + file + " has no key for identity '" + identity
                    + "' (the user name of the URI, nbds://NAME@HOST/..., or --tls-username)");
        }
        return key;
    }
}
