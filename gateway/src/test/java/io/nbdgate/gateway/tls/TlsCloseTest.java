package io.nbdgate.gateway.tls;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertDoesNotThrow;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.util.Map;
import org.junit.jupiter.api.Test;

/**
 * Both ends closing at once, as a client that says goodbye meets a server that ends the connection on it:
 * each side's close_notify reaches a side that has already closed. That is the normal end of a connection
 * (RFC 8446 6.1: what comes after closing is ignored), not a failure to log.
 */
class TlsCloseTest {
    private static final byte[] KEY = "0123456789abcdef0123456789abcdef".getBytes(StandardCharsets.US_ASCII);

    @Test
    void aCloseNotifyThatCrossesOurOwnIsNotAFailure() {
        TlsServerEngine server = TlsServerEngine.accept(new ServerCredentials.Psk(Map.of("check", KEY), null));
        TlsEngine client = TlsEngine.start(new ClientCredentials.Psk("check", KEY, null));
        for (int i = 0; i < 10 && (client.handshaking() || server.handshaking()); i++) {
            server.received(ByteBuffer.wrap(client.takeOutput()));
            client.received(ByteBuffer.wrap(server.takeOutput()));
        }
        assertTrue(client.connected() && server.connected(), "the handshake did not complete");

        client.writeApplication(ByteBuffer.wrap("bye".getBytes(StandardCharsets.US_ASCII)));
        server.received(ByteBuffer.wrap(client.takeOutput()));
        byte[] got = new byte[server.applicationAvailable()];
        server.readApplication(ByteBuffer.wrap(got));
        assertArrayEquals("bye".getBytes(StandardCharsets.US_ASCII), got);

        server.close();
        client.close();
        byte[] fromClient = client.takeOutput();
        byte[] fromServer = server.takeOutput();
        assertDoesNotThrow(() -> server.received(ByteBuffer.wrap(fromClient)), "server");
        assertDoesNotThrow(() -> client.received(ByteBuffer.wrap(fromServer)), "client");
    }
}
