package io.nbdgate.gateway.tls;

import java.io.IOException;
import java.security.cert.CertificateEncodingException;
import java.security.cert.X509Certificate;
import java.util.List;
import java.util.Vector;
import org.bouncycastle.crypto.params.AsymmetricKeyParameter;
import org.bouncycastle.crypto.params.ECPrivateKeyParameters;
import org.bouncycastle.crypto.params.Ed25519PrivateKeyParameters;
import org.bouncycastle.crypto.params.RSAKeyParameters;
import org.bouncycastle.tls.AlertDescription;
import org.bouncycastle.tls.Certificate;
import org.bouncycastle.tls.CertificateEntry;
import org.bouncycastle.tls.HashAlgorithm;
import org.bouncycastle.tls.SignatureAlgorithm;
import org.bouncycastle.tls.SignatureAndHashAlgorithm;
import org.bouncycastle.tls.TlsContext;
import org.bouncycastle.tls.TlsCredentialedSigner;
import org.bouncycastle.tls.TlsFatalAlert;
import org.bouncycastle.tls.TlsUtils;
import org.bouncycastle.tls.crypto.TlsCertificate;
import org.bouncycastle.tls.crypto.TlsCryptoParameters;
import org.bouncycastle.tls.crypto.impl.bc.BcDefaultTlsCredentialedSigner;
import org.bouncycastle.tls.crypto.impl.bc.BcTlsCrypto;

/**
 * A certificate chain and its key as the credentials one side signs its handshake with (our client
 * certificate, the embedded server's certificate): the chain in the form of the negotiated version, and the
 * first of the peer's signature algorithms that the key can make (RSA, ECDSA P-256/384/521, Ed25519).
 */
final class Signers {
    private Signers() {
    }

    /** {@code requestContext}: the CertificateRequest's context (TLS 1.3 client), else empty. */
    static TlsCredentialedSigner signer(TlsContext context, BcTlsCrypto crypto, List<X509Certificate> chain,
                                        AsymmetricKeyParameter key, Vector<?> offered, byte[] requestContext)
            throws IOException {
        TlsCertificate[] certs = new TlsCertificate[chain.size()];
        for (int i = 0; i < certs.length; i++) {
            try {
                certs[i] = crypto.createCertificate(chain.get(i).getEncoded());
            } catch (CertificateEncodingException e) {
                throw new IOException(e);
            }
        }
        Certificate certificate;
        if (TlsUtils.isTLSv13(context)) {
            CertificateEntry[] entries = new CertificateEntry[certs.length];
            for (int i = 0; i < certs.length; i++) {
                entries[i] = new CertificateEntry(certs[i], null);
            }
            certificate = new Certificate(requestContext, entries);
        } else {
            certificate = new Certificate(certs);
        }
        SignatureAndHashAlgorithm algorithm = choose(offered, key);
        if (algorithm == null) {
            throw new TlsFatalAlert(AlertDescription.handshake_failure, new TlsException(
                    "the peer accepts no signature that our key (" + keyKind(key) + ") can make"));
        }
        return new BcDefaultTlsCredentialedSigner(new TlsCryptoParameters(context), crypto, key, certificate, algorithm);
    }

    /** The first of the peer's signature algorithms that {@code key} can make, or null. */
    private static SignatureAndHashAlgorithm choose(Vector<?> offered, AsymmetricKeyParameter key) {
        if (offered == null) {
            return null;
        }
        for (Object o : offered) {
            SignatureAndHashAlgorithm a = (SignatureAndHashAlgorithm) o;
            short sig = a.getSignature();
            boolean fits = switch (key) {
                case RSAKeyParameters r -> sig == SignatureAlgorithm.rsa_pss_rsae_sha256
                        || sig == SignatureAlgorithm.rsa_pss_rsae_sha384 || sig == SignatureAlgorithm.rsa_pss_rsae_sha512
                        || sig == SignatureAlgorithm.rsa;
                case ECPrivateKeyParameters e -> sig == SignatureAlgorithm.ecdsa
                        && a.getHash() == curveHash(e.getParameters().getCurve().getFieldSize());
                case Ed25519PrivateKeyParameters e -> sig == SignatureAlgorithm.ed25519;
                default -> false;
            };
            if (fits) {
                return a;
            }
        }
        return null;
    }

    /** TLS 1.3 binds ECDSA's hash to the curve: P-256 with SHA-256, P-384 with SHA-384, P-521 with SHA-512. */
    private static short curveHash(int fieldBits) {
        return fieldBits <= 256 ? HashAlgorithm.sha256 : fieldBits <= 384 ? HashAlgorithm.sha384 : HashAlgorithm.sha512;
    }

    private static String keyKind(AsymmetricKeyParameter key) {
        return switch (key) {
            case RSAKeyParameters r -> "RSA";
            case ECPrivateKeyParameters e -> "ECDSA";
            case Ed25519PrivateKeyParameters e -> "Ed25519";
            default -> key.getClass().getSimpleName();
        };
    }
}
