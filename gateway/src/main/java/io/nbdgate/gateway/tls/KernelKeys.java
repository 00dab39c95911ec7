package io.nbdgate.gateway.tls;

import java.io.IOException;
import java.util.Arrays;
import org.bouncycastle.tls.EncryptionAlgorithm;
import org.bouncycastle.tls.SecurityParameters;
import org.bouncycastle.tls.TlsUtils;
import org.bouncycastle.tls.crypto.TlsCrypto;
import org.bouncycastle.tls.crypto.TlsCryptoUtils;
import org.bouncycastle.tls.crypto.TlsSecret;
import org.bouncycastle.tls.crypto.impl.AbstractTlsSecret;
import org.bouncycastle.tls.crypto.impl.bc.BcTlsSecret;

/**
 * The record-layer keys of an established connection in the kernel's form, derived from what BouncyCastle's
 * handshake negotiated: TLS 1.3 from the traffic secrets (RFC 8446 7.3), TLS 1.2 from the key block (RFC 5246
 * 6.3). Holds the 1.3 traffic secrets on, as a KeyUpdate derives the next ones from them.
 */
public final class KernelKeys {
    private static final byte[] EMPTY = new byte[0];

    private final boolean tls13;
    private final int encryption;
    private final int keyLength;
    private final int hash;
    private TlsSecret txSecret;
    private TlsSecret rxSecret;
    private final byte[] tx;
    private final byte[] rx;

    private KernelKeys(boolean tls13, int encryption, int keyLength, int hash, TlsSecret txSecret, TlsSecret rxSecret,
                       byte[] tx, byte[] rx) {
        this.tls13 = tls13;
        this.encryption = encryption;
        this.keyLength = keyLength;
        this.hash = hash;
        this.txSecret = txSecret;
        this.rxSecret = rxSecret;
        this.tx = tx;
        this.rx = rx;
    }

    public boolean tls13() {
        return tls13;
    }

    byte[] tx() {
        return tx;
    }

    byte[] rx() {
        return rx;
    }

    /**
     * The keys right after the handshake (call it from the handshake's completion, before BouncyCastle clears
     * its secrets; the 1.3 traffic secrets are copied): TLS 1.3 application traffic starts at record 0 in each direction,
     * TLS 1.2 at record 1 (each side's Finished was record 0 under the new keys).
     */
    static KernelKeys of(SecurityParameters sp, TlsCrypto crypto) {
        int suite = sp.getCipherSuite();
        int encryption = TlsUtils.getEncryptionAlgorithm(suite);
        int keyLength = switch (encryption) {
            case EncryptionAlgorithm.AES_128_GCM -> 16;
            case EncryptionAlgorithm.AES_256_GCM, EncryptionAlgorithm.CHACHA20_POLY1305 -> 32;
            default -> throw new TlsException("cipher " + TlsEngine.cipherName(suite) + " has no kernel TLS form");
        };
        try {
            if (TlsUtils.isTLSv13(sp.getNegotiatedVersion())) {
                int hash = sp.getPRFCryptoHashAlgorithm();
                // Our own copies: a KeyUpdate derives the next secrets from them long after the handshake.
                // Copied, not extracted: extract() destroys BouncyCastle's own, which it needs for a KeyUpdate
                // when the kernel does not take the records after all and TLS goes on in userspace.
                TlsSecret client = crypto.createSecret(SecretBytes.of(sp.getTrafficSecretClient()));
                TlsSecret server = crypto.createSecret(SecretBytes.of(sp.getTrafficSecretServer()));
                return new KernelKeys(true, encryption, keyLength, hash, client, server,
                        direction13(client, hash, encryption, keyLength), direction13(server, hash, encryption, keyLength));
            }
            int ivLength = encryption == EncryptionAlgorithm.CHACHA20_POLY1305 ? 12 : 4;
            byte[] seed = org.bouncycastle.util.Arrays.concatenate(sp.getServerRandom(), sp.getClientRandom());
            byte[] block = sp.getMasterSecret().deriveUsingPRF(sp.getPRFAlgorithm(), "key expansion", seed,
                    2 * keyLength + 2 * ivLength).extract();
            byte[] clientKey = Arrays.copyOfRange(block, 0, keyLength);
            byte[] serverKey = Arrays.copyOfRange(block, keyLength, 2 * keyLength);
            byte[] clientIv = Arrays.copyOfRange(block, 2 * keyLength, 2 * keyLength + ivLength);
            byte[] serverIv = Arrays.copyOfRange(block, 2 * keyLength + ivLength, 2 * keyLength + 2 * ivLength);
            return new KernelKeys(false, encryption, keyLength, 0, null, null,
                    direction12(encryption, clientKey, clientIv), direction12(encryption, serverKey, serverIv));
        } catch (IOException | IllegalStateException e) {
            throw new TlsException("cannot derive the kernel's TLS keys: " + e.getMessage(), e);
        }
    }

    /** The next receive keys after a KeyUpdate from the server (TLS 1.3 only). */
    public byte[] nextRx() throws IOException {
        rxSecret = TlsCryptoUtils.hkdfExpandLabel(rxSecret, hash, "traffic upd", EMPTY,
                TlsCryptoUtils.getHashOutputSize(hash));
        return direction13(rxSecret, hash, encryption, keyLength);
    }

    /** The next send keys after our own KeyUpdate. */
    public byte[] nextTx() throws IOException {
        txSecret = TlsCryptoUtils.hkdfExpandLabel(txSecret, hash, "traffic upd", EMPTY,
                TlsCryptoUtils.getHashOutputSize(hash));
        return direction13(txSecret, hash, encryption, keyLength);
    }

    private static byte[] direction13(TlsSecret secret, int hash, int encryption, int keyLength) throws IOException {
        byte[] key = TlsCryptoUtils.hkdfExpandLabel(secret, hash, "key", EMPTY, keyLength).extract();
        byte[] iv = TlsCryptoUtils.hkdfExpandLabel(secret, hash, "iv", EMPTY, 12).extract();
        if (encryption == EncryptionAlgorithm.CHACHA20_POLY1305) {
            return KernelTls.cryptoInfo(true, encryption, key, EMPTY, iv, 0);
        }
        return KernelTls.cryptoInfo(true, encryption, key, Arrays.copyOfRange(iv, 0, 4), Arrays.copyOfRange(iv, 4, 12), 0);
    }

    private static byte[] direction12(int encryption, byte[] key, byte[] fixedIv) {
        if (encryption == EncryptionAlgorithm.CHACHA20_POLY1305) {
            return KernelTls.cryptoInfo(false, encryption, key, EMPTY, fixedIv, 1);
        }
        // AES-GCM: the explicit nonce is the record number, which the kernel counts on from here (RFC 5288 3).
        byte[] explicit = java.nio.ByteBuffer.allocate(8).putLong(1).array();
        return KernelTls.cryptoInfo(false, encryption, key, fixedIv, explicit, 1);
    }

    /** A secret's bytes, the secret left alive: AbstractTlsSecret's copy for subclasses, reached as one. */
    private static final class SecretBytes extends BcTlsSecret {
        private SecretBytes() {
            super(null, null);
        }

        static byte[] of(TlsSecret secret) {
            return copyData((AbstractTlsSecret) secret);
        }
    }
}
