package io.nbdgate.protocol.fuzz;

import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.code_intelligence.jazzer.junit.FuzzTest;
import io.nbdgate.protocol.ProtocolException;
import io.nbdgate.protocol.TransmissionMode;
import io.nbdgate.protocol.wire.RequestCodec;
import io.nbdgate.protocol.wire.RequestHeader;
import java.nio.ByteBuffer;

/**
 * Mutated client streams into the server-side request decoder: only {@link ProtocolException} may come
 * out, and a decoded payload length never exceeds the limit the server gave. First byte picks the mode.
 */
class RequestStreamFuzzTest {

    static final long MAX_PAYLOAD = 1 << 20;

    @FuzzTest(maxDuration = "10s")
    void requestStream(byte[] input) {
        if (input.length < 1) {
            return;
        }
        TransmissionMode mode = TransmissionMode.values()[Byte.toUnsignedInt(input[0]) % 3];
        ByteBuffer in = ByteBuffer.wrap(input, 1, input.length - 1);
        try {
            for (RequestHeader h; (h = RequestCodec.decode(in, mode, MAX_PAYLOAD)) != null; ) {
                long payload = h.payloadLength();
                assertTrue(payload >= 0 && payload <= MAX_PAYLOAD, "payload " + payload);
                if (payload > in.remaining()) {
                    return;
                }
                in.position(in.position() + (int) payload);
            }
        } catch (ProtocolException e) {
            assertNotNull(e.violation().message());
        }
    }
}
