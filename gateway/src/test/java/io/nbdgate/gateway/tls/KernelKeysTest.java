package io.nbdgate.gateway.tls;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import io.nbdgate.gateway.testsupport.ExternalNbdServer;
import io.nbdgate.gateway.testsupport.TestPki;
import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.net.Socket;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import javax.crypto.Cipher;
import javax.crypto.spec.GCMParameterSpec;
import javax.crypto.spec.SecretKeySpec;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The keys handed to kernel TLS are the ones the connection really uses: after a handshake with a real
 * GnuTLS server (nbdkit for TLS 1.3, nbd-server limited to 1.2), BouncyCastle encrypts the first application
 * record, and the JDK's AES-GCM must open it with nothing but the TLS_TX crypto_info we built (key, salt, IV,
 * record number). This machine's kernel has no kernel TLS; the guest's TlsGuestTest runs the real thing.
 */
class KernelKeysTest {
    private static final byte[] PLAINTEXT = "NBD request header and payload".getBytes(StandardCharsets.US_ASCII);

    @TempDir
    Path dir;

    @Test
    void tls13KeysOpenTheFirstRecord() throws Exception {
        TestPki pki = TestPki.ca("test CA");
        Path serverDir = pki.writeServerDir(dir.resolve("s"), pki.server("localhost", "localhost", "127.0.0.1"));
        try (var server = ExternalNbdServer.nbdkit(dir, List.of("--tls=require", "--tls-certificates=" + serverDir),
                "memory", "size=1M")) {
            opensFirstRecord(server.port(), pki.writeClientDir(dir.resolve("c"), null), true);
        }
    }

    @Test
    void tls12KeysOpenTheFirstRecord() throws Exception {
        TestPki pki = TestPki.ca("test CA");
        Path serverDir = pki.writeServerDir(dir.resolve("s"), pki.server("localhost", "localhost", "127.0.0.1"));
        Path image = Files.write(dir.resolve("disk.img"), new byte[1 << 20]);
        try (var server = ExternalNbdServer.nbdServerTls(dir, image, "disk", serverDir)) {
            opensFirstRecord(server.port(), pki.writeClientDir(dir.resolve("c"), pki.client("client")), false);
        }
    }

    private void opensFirstRecord(int port, Path clientDir, boolean tls13) throws Exception {
        ClientCredentials credentials = ClientCredentials.load(
                new TlsSettings(null, null, null, clientDir, null, null), "localhost");
        try (Socket s = new Socket("127.0.0.1", port)) {
            DataInputStream in = new DataInputStream(s.getInputStream());
            DataOutputStream out = new DataOutputStream(s.getOutputStream());
            in.readFully(new byte[18]); // NBDMAGIC, IHAVEOPT, handshake flags
            out.writeInt(3); // FIXED_NEWSTYLE | NO_ZEROES
            out.writeLong(0x49484156454F5054L); // IHAVEOPT
            out.writeInt(5); // NBD_OPT_STARTTLS
            out.writeInt(0);
            byte[] reply = new byte[20];
            in.readFully(reply);
            assertEquals(1, ByteBuffer.wrap(reply, 12, 4).getInt(), "STARTTLS acknowledged");

            TlsEngine engine = TlsEngine.start(credentials, true);
            while (engine.handshaking()) {
                out.write(engine.takeOutput());
                byte[] header = new byte[5];
                in.readFully(header);
                byte[] body = new byte[ByteBuffer.wrap(header, 3, 2).getShort() & 0xffff];
                in.readFully(body);
                engine.received(ByteBuffer.wrap(concat(header, body)));
            }
            out.write(engine.takeOutput()); // our Finished (and for 1.2 our ChangeCipherSpec before it)
            byte[] txInfo = engine.kernelKeys().tx();
            engine.writeApplication(ByteBuffer.wrap(PLAINTEXT));
            byte[] record = engine.takeOutput();
            assertArrayEquals(PLAINTEXT, open(txInfo, record, tls13));
        }
    }

    /** Decrypts one record with the crypto_info (AES-GCM-128: version, type, iv[8], key[16], salt[4], seq[8]). */
    private static byte[] open(byte[] info, byte[] record, boolean tls13) throws Exception {
        ByteBuffer b = ByteBuffer.wrap(info).order(ByteOrder.nativeOrder());
        assertEquals(tls13 ? 0x0304 : 0x0303, b.getShort() & 0xffff);
        assertEquals(51, b.getShort(), "AES-GCM-128 is what both servers choose first");
        byte[] iv = new byte[8];
        byte[] key = new byte[16];
        byte[] salt = new byte[4];
        byte[] seq = new byte[8];
        b.get(iv).get(key).get(salt).get(seq);
        long recordNumber = ByteBuffer.wrap(seq).getLong();
        Cipher gcm = Cipher.getInstance("AES/GCM/NoPadding");
        byte[] header = Arrays.copyOf(record, 5);
        if (tls13) {
            // RFC 8446 5.3: nonce = (salt || iv) XOR record number; additional data = the record header.
            byte[] nonce = concat(salt, iv);
            for (int i = 0; i < 8; i++) {
                nonce[4 + i] ^= (byte) (recordNumber >>> (56 - 8 * i));
            }
            gcm.init(Cipher.DECRYPT_MODE, new SecretKeySpec(key, "AES"), new GCMParameterSpec(128, nonce));
            gcm.updateAAD(header);
            byte[] inner = gcm.doFinal(record, 5, record.length - 5);
            assertEquals(23, inner[inner.length - 1], "inner content type: application data");
            return Arrays.copyOf(inner, inner.length - 1);
        }
        // RFC 5288: nonce = salt || explicit nonce (sent in the record; the kernel sends its iv, counting on);
        // additional data = record number || type || version || plaintext length.
        byte[] explicit = Arrays.copyOfRange(record, 5, 13);
        assertArrayEquals(iv, explicit, "the explicit nonce the kernel will send next");
        int length = record.length - 5 - 8 - 16;
        ByteBuffer aad = ByteBuffer.allocate(13).putLong(recordNumber).put((byte) 23).putShort((short) 0x0303)
                .putShort((short) length);
        gcm.init(Cipher.DECRYPT_MODE, new SecretKeySpec(key, "AES"), new GCMParameterSpec(128, concat(salt, explicit)));
        gcm.updateAAD(aad.array());
        return gcm.doFinal(record, 13, record.length - 13);
    }

    private static byte[] concat(byte[] a, byte[] b) {
        byte[] c = Arrays.copyOf(a, a.length + b.length);
        System.arraycopy(b, 0, c, a.length, b.length);
        return c;
    }
}
