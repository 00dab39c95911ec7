package io.nbdgate.gateway.tls;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.util.Vector;
import java.util.concurrent.atomic.LongAdder;
import org.bouncycastle.tls.AlertDescription;
import org.bouncycastle.tls.BasicTlsPSKExternal;
import org.bouncycastle.tls.CipherSuite;
import org.bouncycastle.tls.DefaultTlsServer;
import org.bouncycastle.tls.PRFAlgorithm;
import org.bouncycastle.tls.ProtocolVersion;
import org.bouncycastle.tls.PskIdentity;
import org.bouncycastle.tls.TlsCredentials;
import org.bouncycastle.tls.TlsFatalAlert;
import org.bouncycastle.tls.TlsPSKExternal;
import org.bouncycastle.tls.TlsServerProtocol;
import org.bouncycastle.tls.TlsUtils;
import org.bouncycastle.tls.crypto.impl.bc.BcTlsCrypto;

/**
 * The embedded server's side of one TLS connection, without I/O: TLS 1.3 (1.2 for clients with nothing newer,
 * certificates only), AEAD ciphers, our certificate or a pre-shared key of the client's identity.
 */
public final class TlsServerEngine extends TlsConnection {
    private static final int[] CERTIFICATE_SUITES = {
            CipherSuite.TLS_AES_128_GCM_SHA256, CipherSuite.TLS_AES_256_GCM_SHA384,
            CipherSuite.TLS_CHACHA20_POLY1305_SHA256,
            CipherSuite.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, CipherSuite.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
            CipherSuite.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384, CipherSuite.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384};
    // An external PSK comes with one hash, SHA-256 here as in GnuTLS: a suite of another hash would derive other
    // keys than the client's (GnuTLS prefers AES-256-GCM-SHA384 and then fails to decrypt our handshake).
    private static final int[] PSK_SUITES = {
            CipherSuite.TLS_AES_128_GCM_SHA256, CipherSuite.TLS_CHACHA20_POLY1305_SHA256};

    private static final LongAdder KEY_UPDATES = new LongAdder();

    private final Server server;
    private final long keyUpdateBytes;
    private long sentSinceKeyUpdate;

    private TlsServerEngine(Server server, long keyUpdateBytes) {
        super(new Protocol());
        this.server = server;
        this.keyUpdateBytes = keyUpdateBytes;
    }

    /** The protocol, with its KeyUpdate in reach. */
    private static final class Protocol extends TlsServerProtocol {
        void updateKeys() throws IOException {
            send13KeyUpdate(true);
        }
    }

    /** Waits for the client's hello. */
    public static TlsServerEngine accept(ServerCredentials credentials) {
        return accept(credentials, 0);
    }

    /**
     * Waits for the client's hello; on TLS 1.3, after every {@code keyUpdateBytes} sent (0: never on our own),
     * a KeyUpdate asks for new keys in both directions.
     */
    public static TlsServerEngine accept(ServerCredentials credentials, long keyUpdateBytes) {
        TlsServerEngine engine = new TlsServerEngine(new Server(new RecordCrypto(RANDOM), credentials), keyUpdateBytes);
        try {
            ((TlsServerProtocol) engine.protocol).accept(engine.server);
        } catch (IOException e) {
            throw engine.describe(e);
        }
        return engine;
    }

    @Override
    public void writeApplication(ByteBuffer src) {
        if (keyUpdateBytes > 0 && connected() && (sentSinceKeyUpdate += src.remaining()) >= keyUpdateBytes
                && server.tls13()) {
            sentSinceKeyUpdate = 0;
            try {
                ((Protocol) protocol).updateKeys();
                KEY_UPDATES.increment();
            } catch (IOException e) {
                throw describe(e);
            }
        }
        super.writeApplication(src);
    }

    /** KeyUpdates this process's server connections sent on their own (keyUpdateBytes), for tests. */
    public static long keyUpdatesSent() {
        return KEY_UPDATES.sum();
    }

    /** Who the client is: "psk:IDENTITY", or null (clients are not asked for certificates). */
    public String peer() {
        return server.identity == null ? null : "psk:" + server.identity;
    }

    @Override
    TlsException peerRefused(short alert, IOException e) {
        return new TlsException("the client ended the TLS handshake: " + AlertDescription.getText(alert), e);
    }

    private static final class Server extends DefaultTlsServer {
        private final ServerCredentials credentials;
        String identity;

        Server(BcTlsCrypto crypto, ServerCredentials credentials) {
            super(crypto);
            this.credentials = credentials;
        }

        boolean tls13() {
            return TlsUtils.isTLSv13(context);
        }

        @Override
        protected ProtocolVersion[] getSupportedVersions() {
            return credentials instanceof ServerCredentials.Psk ? ProtocolVersion.TLSv13.only()
                    : ProtocolVersion.TLSv13.downTo(ProtocolVersion.TLSv12);
        }

        @Override
        protected int[] getSupportedCipherSuites() {
            return TlsUtils.getSupportedCipherSuites(getCrypto(),
                    credentials instanceof ServerCredentials.Psk ? PSK_SUITES : CERTIFICATE_SUITES);
        }

        @Override
        public TlsPSKExternal getExternalPSK(@SuppressWarnings("rawtypes") Vector identities) {
            if (!(credentials instanceof ServerCredentials.Psk psk)) {
                return null;
            }
            for (Object o : identities) {
                byte[] id = ((PskIdentity) o).getIdentity();
                String name = new String(id, StandardCharsets.UTF_8);
                byte[] key = psk.keys().get(name);
                if (key != null) {
                    identity = name;
                    return new BasicTlsPSKExternal(id, getCrypto().createSecret(key), PRFAlgorithm.tls13_hkdf_sha256);
                }
            }
            return null;
        }

        @Override
        public TlsCredentials getCredentials() throws IOException {
            if (!(credentials instanceof ServerCredentials.X509 x509)) {
                throw new TlsFatalAlert(AlertDescription.unknown_psk_identity,
                        new TlsException("the client offered no identity that the PSK file knows"));
            }
            return Signers.signer(context, (BcTlsCrypto) getCrypto(), x509.chain(), x509.key(),
                    context.getSecurityParametersHandshake().getClientSigAlgs(), TlsUtils.EMPTY_BYTES);
        }
    }
}
