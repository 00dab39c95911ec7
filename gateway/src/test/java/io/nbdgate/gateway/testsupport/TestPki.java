package io.nbdgate.gateway.testsupport;

import java.io.IOException;
import java.io.Writer;
import java.math.BigInteger;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.GeneralSecurityException;
import java.security.KeyPair;
import java.security.KeyPairGenerator;
import java.security.spec.ECGenParameterSpec;
import java.security.cert.X509Certificate;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Date;
import java.util.List;
import java.util.concurrent.atomic.AtomicLong;
import javax.security.auth.x500.X500Principal;
import org.bouncycastle.asn1.x509.BasicConstraints;
import org.bouncycastle.asn1.x509.ExtendedKeyUsage;
import org.bouncycastle.asn1.x509.Extension;
import org.bouncycastle.asn1.x509.GeneralName;
import org.bouncycastle.asn1.x509.GeneralNames;
import org.bouncycastle.asn1.x509.KeyPurposeId;
import org.bouncycastle.asn1.x509.KeyUsage;
import org.bouncycastle.cert.jcajce.JcaX509CertificateConverter;
import org.bouncycastle.cert.jcajce.JcaX509v3CertificateBuilder;
import org.bouncycastle.openssl.jcajce.JcaPEMWriter;
import org.bouncycastle.operator.OperatorCreationException;
import org.bouncycastle.operator.jcajce.JcaContentSignerBuilder;

/**
 * Certificates made by a test for real TLS peers (nbdkit, qemu-nbd, nbd-server): a CA, server and client
 * certificates it signs (ECDSA P-256), valid now or expired, written in the directory layouts the servers and
 * libnbd read (ca-cert.pem, server-cert.pem, server-key.pem; client-cert.pem, client-key.pem).
 */
public final class TestPki {
    private static final AtomicLong SERIAL = new AtomicLong(System.currentTimeMillis());

    public record Issued(X509Certificate certificate, KeyPair keys) {
    }

    private final Issued ca;

    private TestPki(Issued ca) {
        this.ca = ca;
    }

    /** A new CA named {@code name}, valid for a day around now. */
    public static TestPki ca(String name) throws IOException {
        KeyPair keys = keyPair();
        X500Principal subject = new X500Principal("CN=" + name);
        Instant now = Instant.now();
        return new TestPki(new Issued(build(subject, keys, subject, keys, now.minus(Duration.ofHours(1)),
                now.plus(Duration.ofDays(1)), true, List.of(), null), keys));
    }

    /** A server certificate for {@code cn}, with {@code names} as DNS names (or IP addresses), valid now. */
    public Issued server(String cn, String... names) throws IOException {
        Instant now = Instant.now();
        return issue(cn, now.minus(Duration.ofHours(1)), now.plus(Duration.ofDays(1)), KeyPurposeId.id_kp_serverAuth,
                names);
    }

    /** A server certificate that expired yesterday. */
    public Issued expiredServer(String cn, String... names) throws IOException {
        Instant now = Instant.now();
        return issue(cn, now.minus(Duration.ofDays(30)), now.minus(Duration.ofDays(1)), KeyPurposeId.id_kp_serverAuth,
                names);
    }

    public Issued client(String cn) throws IOException {
        Instant now = Instant.now();
        return issue(cn, now.minus(Duration.ofHours(1)), now.plus(Duration.ofDays(1)), KeyPurposeId.id_kp_clientAuth);
    }

    /** ca-cert.pem, server-cert.pem and server-key.pem in {@code dir} (nbdkit, qemu-nbd). */
    public Path writeServerDir(Path dir, Issued server) throws IOException {
        Files.createDirectories(dir);
        pem(dir.resolve("ca-cert.pem"), ca.certificate());
        pem(dir.resolve("server-cert.pem"), server.certificate());
        pem(dir.resolve("server-key.pem"), server.keys().getPrivate());
        return dir;
    }

    /** ca-cert.pem, and client-cert.pem with client-key.pem when {@code client} is given (libnbd's layout). */
    public Path writeClientDir(Path dir, Issued client) throws IOException {
        Files.createDirectories(dir);
        pem(dir.resolve("ca-cert.pem"), ca.certificate());
        if (client != null) {
            pem(dir.resolve("client-cert.pem"), client.certificate());
            pem(dir.resolve("client-key.pem"), client.keys().getPrivate());
        }
        return dir;
    }

    private Issued issue(String cn, Instant from, Instant to, KeyPurposeId purpose, String... names)
            throws IOException {
        KeyPair keys = keyPair();
        List<GeneralName> alt = new ArrayList<>();
        for (String n : names) {
            boolean ip = n.chars().allMatch(c -> c == '.' || Character.isDigit(c)) || n.contains(":");
            alt.add(new GeneralName(ip ? GeneralName.iPAddress : GeneralName.dNSName, n));
        }
        return new Issued(build(new X500Principal("CN=" + cn), keys, ca.certificate().getSubjectX500Principal(),
                ca.keys(), from, to, false, alt, purpose), keys);
    }

    private static X509Certificate build(X500Principal subject, KeyPair keys, X500Principal issuer, KeyPair signer,
                                         Instant from, Instant to, boolean isCa, List<GeneralName> alt,
                                         KeyPurposeId purpose) throws IOException {
        try {
            JcaX509v3CertificateBuilder b = new JcaX509v3CertificateBuilder(issuer,
                    BigInteger.valueOf(SERIAL.incrementAndGet()), Date.from(from), Date.from(to), subject,
                    keys.getPublic());
            b.addExtension(Extension.basicConstraints, true, new BasicConstraints(isCa));
            b.addExtension(Extension.keyUsage, true, new KeyUsage(isCa ? KeyUsage.keyCertSign | KeyUsage.cRLSign
                    : KeyUsage.digitalSignature | KeyUsage.keyEncipherment)); // qemu-nbd asks for both
            if (!alt.isEmpty()) {
                b.addExtension(Extension.subjectAlternativeName, false,
                        new GeneralNames(alt.toArray(GeneralName[]::new)));
            }
            if (purpose != null) {
                b.addExtension(Extension.extendedKeyUsage, false, new ExtendedKeyUsage(purpose));
            }
            return new JcaX509CertificateConverter().getCertificate(
                    b.build(new JcaContentSignerBuilder("SHA256withECDSA").build(signer.getPrivate())));
        } catch (GeneralSecurityException | OperatorCreationException e) {
            throw new IOException(e);
        }
    }

    private static KeyPair keyPair() throws IOException {
        try {
            // BouncyCastle's encoding carries the public key inside the private key, which GnuTLS 3.7 insists on.
            KeyPairGenerator g = KeyPairGenerator.getInstance("EC", new org.bouncycastle.jce.provider.BouncyCastleProvider());
            g.initialize(new ECGenParameterSpec("secp256r1"));
            return g.generateKeyPair();
        } catch (GeneralSecurityException e) {
            throw new IOException(e);
        }
    }

    private static void pem(Path file, Object o) throws IOException {
        try (Writer w = Files.newBufferedWriter(file); JcaPEMWriter pem = new JcaPEMWriter(w)) {
            if (o instanceof java.security.PrivateKey key) {
                pem.writeObject(new org.bouncycastle.openssl.jcajce.JcaPKCS8Generator(key, null)); // PKCS#8, whole
            } else {
                pem.writeObject(o);
            }
        }
    }
}
