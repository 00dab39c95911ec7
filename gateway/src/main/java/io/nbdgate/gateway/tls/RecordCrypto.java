package io.nbdgate.gateway.tls;

import java.io.IOException;
import java.security.SecureRandom;
import org.bouncycastle.tls.EncryptionAlgorithm;
import org.bouncycastle.tls.crypto.TlsCipher;
import org.bouncycastle.tls.crypto.TlsCryptoParameters;
import org.bouncycastle.tls.crypto.impl.bc.BcTlsCrypto;
import org.bouncycastle.tls.crypto.impl.jcajce.JcaTlsCrypto;
import org.bouncycastle.tls.crypto.impl.jcajce.JcaTlsCryptoProvider;

/**
 * BouncyCastle's crypto for the handshake, the JDK's AES-GCM for the records. BouncyCastle's own AES and GHASH
 * are plain Java; the JDK's run on the CPU's AES and carry-less multiply instructions (HotSpot intrinsics), and
 * in userspace TLS every data byte goes through them. The record cipher only takes the keys the handshake
 * derived, so the two crypto implementations meet at nothing else. ChaCha20-Poly1305 stays BouncyCastle's:
 * BouncyCastle asks the JCA for it under names only its own provider knows.
 */
final class RecordCrypto extends BcTlsCrypto {
    private final JcaTlsCrypto jdk;

    RecordCrypto(SecureRandom random) {
        super(random);
        this.jdk = new JcaTlsCryptoProvider().create(random);
    }

    @Override
    public TlsCipher createCipher(TlsCryptoParameters parameters, int encryptionAlgorithm, int macAlgorithm)
            throws IOException {
        return switch (encryptionAlgorithm) {
            case EncryptionAlgorithm.AES_128_GCM, EncryptionAlgorithm.AES_256_GCM ->
                    jdk.createCipher(parameters, encryptionAlgorithm, macAlgorithm);
            default -> super.createCipher(parameters, encryptionAlgorithm, macAlgorithm);
        };
    }
}
