package io.nbdgate.gateway.tls;

import java.io.IOException;
import java.util.Map;
import org.bouncycastle.tls.AlertDescription;
import org.bouncycastle.tls.CipherSuite;
import org.bouncycastle.tls.TlsClientProtocol;

/**
 * Our side of a TLS connection to an NBD server, without I/O (the caller owns the socket: a blocking one for
 * info and list, the ring for devices). Every failure is a {@link TlsException} whose message names the cause
 * in one line: unknown CA, name mismatch, expiry, wrong PSK, no common cipher.
 */
public final class TlsEngine extends TlsConnection {
    private final NbdTlsClient client;

    private TlsEngine(NbdTlsClient client) {
        super(new TlsClientProtocol());
        this.client = client;
    }

    /** Starts a handshake with {@code credentials}: its ClientHello is waiting in {@link #takeOutput}. */
    public static TlsEngine start(ClientCredentials credentials) {
        return start(credentials, false);
    }

    /** The same, and with {@code kernel} the record keys are kept for {@link #kernelKeys}. */
    public static TlsEngine start(ClientCredentials credentials, boolean kernel) {
        NbdTlsClient client = new NbdTlsClient(new RecordCrypto(RANDOM), credentials);
        client.kernelWanted = kernel;
        TlsEngine engine = new TlsEngine(client);
        try {
            ((TlsClientProtocol) engine.protocol).connect(engine.client);
        } catch (IOException e) {
            throw engine.describe(e);
        }
        return engine;
    }

    /**
     * The server closed (or reset) the connection: the failure with its likely reason, or null when the close
     * came after the handshake with nothing pointing at TLS, and the caller's protocol decides.
     */
    public TlsException endOfStream() {
        boolean established = protocol.isConnected();
        try {
            protocol.closeInput();
        } catch (IOException ignored) {
            // the description below is what matters
        }
        if (client.certificateRequestedWithoutOne) {
            // TLS 1.3 servers judge the client's certificate after the client's handshake ended: the close
            // comes at the first read or write, and GnuTLS sends no alert first.
            return new TlsException("the server closed the connection after asking for a client certificate,"
                    + " which we do not have: put client-cert.pem and client-key.pem in the tls-certificates directory");
        }
        if (client.credentials() instanceof ClientCredentials.Psk psk && !established) {
            return new TlsException("the server closed the connection during the TLS handshake: it may not know"
                    + " identity '" + psk.identity() + "' or have another key for it");
        }
        return established ? null : new TlsException("the server closed the connection during the TLS handshake");
    }

    /**
     * The record keys for the kernel, once the handshake is complete and its last record has been sent; from
     * then on this engine is not used for records (the kernel has the sequence numbers).
     */
    public KernelKeys kernelKeys() {
        if (client.kernelKeysFailure != null) {
            throw client.kernelKeysFailure;
        }
        if (client.kernelKeys == null) {
            throw new IllegalStateException("kernel keys were not asked for at start, or the handshake is not done");
        }
        return client.kernelKeys;
    }

    /** Version, cipher and the server's identity of an established connection. */
    public TlsDescription description() {
        var params = client.context().getSecurityParametersConnection();
        String peer = client.credentials() instanceof ClientCredentials.Psk psk ? "psk:" + psk.identity()
                : client.peer;
        return new TlsDescription(params.getNegotiatedVersion().getName(), cipherName(params.getCipherSuite()), peer);
    }

    private static final Map<Integer, String> CIPHERS = Map.ofEntries(
            Map.entry(CipherSuite.TLS_AES_128_GCM_SHA256, "TLS_AES_128_GCM_SHA256"),
            Map.entry(CipherSuite.TLS_AES_256_GCM_SHA384, "TLS_AES_256_GCM_SHA384"),
            Map.entry(CipherSuite.TLS_CHACHA20_POLY1305_SHA256, "TLS_CHACHA20_POLY1305_SHA256"),
            Map.entry(CipherSuite.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, "ECDHE-ECDSA-AES128-GCM-SHA256"),
            Map.entry(CipherSuite.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256, "ECDHE-RSA-AES128-GCM-SHA256"),
            Map.entry(CipherSuite.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384, "ECDHE-ECDSA-AES256-GCM-SHA384"),
            Map.entry(CipherSuite.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384, "ECDHE-RSA-AES256-GCM-SHA384"),
            Map.entry(CipherSuite.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256, "ECDHE-ECDSA-CHACHA20-POLY1305"),
            Map.entry(CipherSuite.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256, "ECDHE-RSA-CHACHA20-POLY1305"),
            Map.entry(CipherSuite.TLS_ECDHE_PSK_WITH_CHACHA20_POLY1305_SHA256, "ECDHE-PSK-CHACHA20-POLY1305"),
            Map.entry(CipherSuite.TLS_DHE_PSK_WITH_AES_128_GCM_SHA256, "DHE-PSK-AES128-GCM-SHA256"),
            Map.entry(CipherSuite.TLS_DHE_PSK_WITH_AES_256_GCM_SHA384, "DHE-PSK-AES256-GCM-SHA384"),
            Map.entry(CipherSuite.TLS_PSK_WITH_AES_128_GCM_SHA256, "PSK-AES128-GCM-SHA256"),
            Map.entry(CipherSuite.TLS_PSK_WITH_AES_256_GCM_SHA384, "PSK-AES256-GCM-SHA384"));

    static String cipherName(int suite) {
        return CIPHERS.getOrDefault(suite, String.format("0x%04x", suite));
    }

    @Override
    TlsException peerRefused(short alert, IOException e) {
        String text = AlertDescription.getText(alert);
        if (client.credentials() instanceof ClientCredentials.Psk psk) {
            return new TlsException("the server refused the pre-shared key of identity '" + psk.identity()
                    + "' (" + text + "): a wrong key, or an identity it does not know", e);
        }
        if (client.certificateRequestedWithoutOne) {
            return new TlsException("the server requires a client certificate (" + text
                    + "): put client-cert.pem and client-key.pem in the tls-certificates directory", e);
        }
        if (client.sentCertificate && alert != AlertDescription.protocol_version) {
            return new TlsException("the server refused our client certificate (" + text + ")", e);
        }
        if (alert == AlertDescription.protocol_version || alert == AlertDescription.handshake_failure
                || alert == AlertDescription.insufficient_security) {
            return new TlsException("no TLS version or cipher in common with the server (" + text
                    + "); nbdgate speaks TLS 1.2 and 1.3 with AES-GCM and ChaCha20-Poly1305", e);
        }
        return new TlsException("the server ended the TLS handshake: " + text, e);
    }
}
