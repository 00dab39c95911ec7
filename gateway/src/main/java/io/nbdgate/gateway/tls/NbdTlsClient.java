package io.nbdgate.gateway.tls;

import java.io.IOException;
import java.util.Vector;
import org.bouncycastle.tls.AlertDescription;
import org.bouncycastle.tls.BasicTlsPSKExternal;
import org.bouncycastle.tls.BasicTlsPSKIdentity;
import org.bouncycastle.tls.CertificateRequest;
import org.bouncycastle.tls.CipherSuite;
import org.bouncycastle.tls.DefaultTlsClient;
import org.bouncycastle.tls.PRFAlgorithm;
import org.bouncycastle.tls.ProtocolVersion;
import org.bouncycastle.tls.TlsAuthentication;
import org.bouncycastle.tls.TlsCredentials;
import org.bouncycastle.tls.TlsFatalAlert;
import org.bouncycastle.tls.TlsPSKIdentity;
import org.bouncycastle.tls.TlsServerCertificate;
import org.bouncycastle.tls.TlsUtils;
import org.bouncycastle.tls.crypto.impl.bc.BcTlsCrypto;

/**
 * BouncyCastle's view of our side of the handshake: TLS 1.3 (1.2 where the server has nothing newer), and only
 * AEAD ciphers that kernel TLS can take over (AES-GCM, ChaCha20-Poly1305), authenticated by the server's X.509
 * certificate (checked by {@link ServerCertificateCheck}) with an optional client certificate, or by a PSK.
 */
final class NbdTlsClient extends DefaultTlsClient {
    private static final int[] CERTIFICATE_SUITES = {
            CipherSuite.TLS_AES_128_GCM_SHA256, CipherSuite.TLS_AES_256_GCM_SHA384,
            CipherSuite.TLS_CHACHA20_POLY1305_SHA256,
            CipherSuite.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, CipherSuite.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
            CipherSuite.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384, CipherSuite.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
            CipherSuite.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
            CipherSuite.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256};
    private static final int[] PSK_SUITES = {
            CipherSuite.TLS_AES_128_GCM_SHA256, CipherSuite.TLS_AES_256_GCM_SHA384,
            CipherSuite.TLS_CHACHA20_POLY1305_SHA256,
            CipherSuite.TLS_ECDHE_PSK_WITH_CHACHA20_POLY1305_SHA256, CipherSuite.TLS_DHE_PSK_WITH_AES_128_GCM_SHA256,
            CipherSuite.TLS_DHE_PSK_WITH_AES_256_GCM_SHA384, CipherSuite.TLS_PSK_WITH_AES_128_GCM_SHA256,
            CipherSuite.TLS_PSK_WITH_AES_256_GCM_SHA384};

    private final ClientCredentials credentials;
    /** Set when a client certificate was asked for and we had none: the likely reason of a refusal. */
    boolean certificateRequestedWithoutOne;
    /** Set when we sent a client certificate: a refusal after it is about that certificate. */
    boolean sentCertificate;
    /** Who the server proved to be: its certificate's subject, or the PSK identity. */
    String peer;
    /** Derive the kernel's record keys when the handshake completes (BouncyCastle clears the secrets after). */
    boolean kernelWanted;
    KernelKeys kernelKeys;
    TlsException kernelKeysFailure;

    @Override
    public void notifyHandshakeComplete() throws IOException {
        super.notifyHandshakeComplete();
        if (kernelWanted) {
            try {
                var params = context.getSecurityParametersConnection() != null
                        ? context.getSecurityParametersConnection() : context.getSecurityParametersHandshake();
                kernelKeys = KernelKeys.of(params, getCrypto());
            } catch (TlsException e) {
                kernelKeysFailure = e;
            }
        }
    }

    NbdTlsClient(BcTlsCrypto crypto, ClientCredentials credentials) {
        super(crypto);
        this.credentials = credentials;
    }

    org.bouncycastle.tls.TlsClientContext context() {
        return context;
    }

    ClientCredentials credentials() {
        return credentials;
    }

    @Override
    protected ProtocolVersion[] getSupportedVersions() {
        return ProtocolVersion.TLSv13.downTo(ProtocolVersion.TLSv12);
    }

    @Override
    protected int[] getSupportedCipherSuites() {
        int[] wanted = credentials instanceof ClientCredentials.Psk ? PSK_SUITES
                : CERTIFICATE_SUITES;
        return TlsUtils.getSupportedCipherSuites(getCrypto(), wanted);
    }

    @Override
    @SuppressWarnings({"rawtypes", "unchecked"})
    public Vector getExternalPSKs() {
        if (!(credentials instanceof ClientCredentials.Psk psk)) {
            return null;
        }
        Vector v = new Vector();
        v.add(new BasicTlsPSKExternal(psk.identity().getBytes(java.nio.charset.StandardCharsets.UTF_8),
                getCrypto().createSecret(psk.key()), PRFAlgorithm.tls13_hkdf_sha256));
        return v;
    }

    @Override
    public TlsPSKIdentity getPSKIdentity() {
        if (credentials instanceof ClientCredentials.Psk psk) {
            return new BasicTlsPSKIdentity(psk.identity(), psk.key());
        }
        return null;
    }

    @Override
    public TlsAuthentication getAuthentication() {
        return new TlsAuthentication() {
            @Override
            public void notifyServerCertificate(TlsServerCertificate serverCertificate) throws IOException {
                if (!(credentials instanceof ClientCredentials.X509 x509)) {
                    throw new TlsFatalAlert(AlertDescription.handshake_failure,
                            new TlsException("the server authenticated with a certificate, not with the pre-shared key"));
                }
                peer = ServerCertificateCheck.subjectOf(serverCertificate.getCertificate());
                if (!x509.verifyPeer()) {
                    return;
                }
                try {
                    ServerCertificateCheck.check(ServerCertificateCheck.encoded(serverCertificate.getCertificate()),
                            x509);
                } catch (TlsException e) {
                    short alert = e.getMessage().contains("expired") ? AlertDescription.certificate_expired
                            : e.getMessage().contains("not signed by") ? AlertDescription.unknown_ca
                            : AlertDescription.bad_certificate;
                    throw new TlsFatalAlert(alert, e);
                }
            }

            @Override
            public TlsCredentials getClientCredentials(CertificateRequest request) throws IOException {
                if (!(credentials instanceof ClientCredentials.X509 x509)
                        || x509.clientKey() == null) {
                    certificateRequestedWithoutOne = true;
                    return null;
                }
                sentCertificate = true;
                return signer(request, x509);
            }
        };
    }

    private TlsCredentials signer(CertificateRequest request, ClientCredentials.X509 x509) throws IOException {
        return Signers.signer(context, (BcTlsCrypto) getCrypto(), x509.clientChain(), x509.clientKey(),
                request.getSupportedSignatureAlgorithms(), request.getCertificateRequestContext());
    }
}
