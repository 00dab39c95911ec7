package io.nbdgate.gateway.tls;

import io.nbdgate.uring.Errno;
import io.nbdgate.uring.LinuxCalls;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;

/**
 * Hands an established connection's record layer to the kernel (Documentation/networking/tls.rst): TCP_ULP
 * "tls", then the keys, IVs and sequence numbers of each direction as a {@code tls12_crypto_info_*} struct at
 * SOL_TLS TLS_TX and TLS_RX. From then on SEND and RECV on the socket carry plaintext and the kernel encrypts
 * and decrypts in place: request pages go to the socket and come from it with no copy in Java.
 */
public final class KernelTls {
    // linux/tls.h cipher types
    private static final short AES_GCM_128 = 51, AES_GCM_256 = 52, CHACHA20_POLY1305 = 54;

    private KernelTls() {
    }

    /**
     * Builds the kernel's crypto_info for a cipher: {@code iv} is the full 12-byte nonce base (TLS 1.3, and
     * ChaCha20 in 1.2), or salt (4 bytes) + explicit nonce (8) for AES-GCM in TLS 1.2.
     */
    static byte[] cryptoInfo(boolean tls13, int encryptionAlgorithm, byte[] key, byte[] salt, byte[] iv, long seq) {
        short type;
        int saltLen;
        int ivLen;
        switch (encryptionAlgorithm) {
            case org.bouncycastle.tls.EncryptionAlgorithm.AES_128_GCM -> {
                type = AES_GCM_128;
                saltLen = 4;
                ivLen = 8;
            }
            case org.bouncycastle.tls.EncryptionAlgorithm.AES_256_GCM -> {
                type = AES_GCM_256;
                saltLen = 4;
                ivLen = 8;
            }
            case org.bouncycastle.tls.EncryptionAlgorithm.CHACHA20_POLY1305 -> {
                type = CHACHA20_POLY1305;
                saltLen = 0;
                ivLen = 12;
            }
            default -> throw new TlsException("kernel TLS has no cipher for encryption algorithm " + encryptionAlgorithm);
        }
        // struct tls12_crypto_info_*: {u16 version, u16 cipher_type}, iv[ivLen], key[], salt[saltLen], rec_seq[8]
        ByteBuffer b = ByteBuffer.allocate(4 + ivLen + key.length + saltLen + 8).order(ByteOrder.nativeOrder());
        b.putShort((short) (tls13 ? 0x0304 : 0x0303)).putShort(type);
        b.put(iv, 0, ivLen);
        b.put(key);
        b.put(salt, 0, saltLen);
        b.order(ByteOrder.BIG_ENDIAN).putLong(seq);
        return b.array();
    }

    /**
     * Puts the socket's record layer in the kernel. Call when the handshake's last record has left and before
     * anything more is received. Returns why the kernel cannot take it when nothing changed on the socket (no
     * tls module, a cipher it lacks): TLS can then go on in userspace. Null when it took it; an exception when
     * it took one direction and refused the other, which leaves the connection unusable.
     */
    public static String tryInstall(int fd, KernelKeys keys) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment ulp = arena.allocateFrom("tls", StandardCharsets.US_ASCII);
            int rc = LinuxCalls.setsockopt(fd, LinuxCalls.IPPROTO_TCP, LinuxCalls.TCP_ULP, ulp);
            if (rc == -Errno.ENOTCONN) {
                // Not the kernel's lack: the connection is gone, and TLS in userspace would not get further.
                throw new TlsException("the server closed the connection right after the TLS handshake");
            }
            if (rc < 0) {
                return "kernel TLS is not available (" + Errno.describe(-rc)
                        + (rc == -Errno.ENOENT ? ": the tls module is not loaded; modprobe tls" : "") + ")";
            }
            // A socket with the tls ULP but no keys still passes plaintext through as TCP.
            String tx = set(arena, fd, LinuxCalls.TLS_TX, keys.tx());
            if (tx != null) {
                return "the kernel refused the TLS send keys (" + tx + ")";
            }
            String rx = set(arena, fd, LinuxCalls.TLS_RX, keys.rx());
            if (rx != null) {
                throw new TlsException("the kernel took the TLS send keys and refused the receive keys (" + rx + ")");
            }
            if (keys.tls13()) {
                // Lets the kernel decrypt straight into the receive buffer: no padding is expected (a padded
                // record is still handled, just more slowly).
                MemorySegment one = arena.allocate(ValueLayout.JAVA_INT);
                one.set(ValueLayout.JAVA_INT, 0, 1);
                LinuxCalls.setsockopt(fd, LinuxCalls.SOL_TLS, LinuxCalls.TLS_RX_EXPECT_NO_PAD, one);
            }
            return null;
        }
    }

    /** New receive keys after the server's KeyUpdate (Linux 6.14+ rekeys a TLS 1.3 socket in place). */
    public static void rekeyRx(int fd, byte[] rx) {
        try (Arena arena = Arena.ofConfined()) {
            set(arena, fd, LinuxCalls.TLS_RX, rx, "TLS_RX (KeyUpdate)");
        }
    }

    /** New send keys after our own KeyUpdate went out. */
    public static void rekeyTx(int fd, byte[] tx) {
        try (Arena arena = Arena.ofConfined()) {
            set(arena, fd, LinuxCalls.TLS_TX, tx, "TLS_TX (KeyUpdate)");
        }
    }

    private static void set(Arena arena, int fd, int option, byte[] info, String what) {
        String refused = set(arena, fd, option, info);
        if (refused != null) {
            throw new TlsException("the kernel refused the TLS keys (" + what + ": " + refused + ")");
        }
    }

    /** Null, or the kernel's refusal. */
    private static String set(Arena arena, int fd, int option, byte[] info) {
        MemorySegment v = arena.allocate(info.length);
        MemorySegment.copy(info, 0, v, ValueLayout.JAVA_BYTE, 0, info.length);
        int rc = LinuxCalls.setsockopt(fd, LinuxCalls.SOL_TLS, option, v);
        return rc < 0 ? Errno.describe(-rc) : null;
    }
}
