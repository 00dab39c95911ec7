package io.nbdgate.protocol.fuzz;

import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import com.code_intelligence.jazzer.junit.FuzzTest;
import io.nbdgate.protocol.client.ClientHandshake;
import io.nbdgate.protocol.client.HandshakeAction;
import io.nbdgate.protocol.client.HandshakeConfig;
import java.nio.ByteBuffer;

/**
 * Mutated server handshakes into the client state machine: it must end in Ready, Listed or Failed
 * without an exception and without looping. First input byte picks the configuration.
 */
class HandshakeFuzzTest {

    @FuzzTest(maxDuration = "10s")
    void clientHandshake(byte[] input) {
        if (input.length < 1) {
            return;
        }
        int pick = input[0];
        HandshakeConfig config = new HandshakeConfig("disk", (pick & 1) == 0 ? HandshakeConfig.Goal.GO
                : HandshakeConfig.Goal.LIST, (pick & 2) != 0, (pick & 4) != 0, (pick & 8) != 0);
        ClientHandshake h = new ClientHandshake(config);
        ByteBuffer stream = ByteBuffer.wrap(input, 1, input.length - 1);
        ByteBuffer acc = ByteBuffer.allocate(input.length).flip();
        for (int steps = 0; steps < 100_000; steps++) {
            HandshakeAction a = h.step(acc);
            switch (a) {
                case HandshakeAction.Send s -> assertTrue(s.bytes().remaining() > 0);
                case HandshakeAction.NeedMore n -> {
                    assertTrue(n.bytes() > acc.remaining(), "NeedMore with enough bytes buffered");
                    if (!stream.hasRemaining()) {
                        HandshakeAction end = h.endOfStream();
                        assertTrue(end instanceof HandshakeAction.Failed || end instanceof HandshakeAction.Listed);
                        return;
                    }
                    acc.compact();
                    int k = Math.min(5, stream.remaining());
                    acc.put(acc.position(), stream, stream.position(), k);
                    acc.position(acc.position() + k);
                    stream.position(stream.position() + k);
                    acc.flip();
                }
                case HandshakeAction.UpgradeToTls u -> h.tlsEstablished();
                case HandshakeAction.Ready r -> {
                    assertTrue(r.export().size() >= 0);
                    return;
                }
                case HandshakeAction.Listed l -> {
                    assertNotNull(l.exports());
                    return;
                }
                case HandshakeAction.Failed f -> {
                    assertNotNull(f.error().message());
                    return;
                }
            }
        }
        fail("handshake did not terminate");
    }
}
