package io.nbdgate.protocol.wire;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;

import io.nbdgate.protocol.Command;
import io.nbdgate.protocol.CommandFlag;
import io.nbdgate.protocol.ProtocolException;
import io.nbdgate.protocol.ProtocolViolation;
import io.nbdgate.protocol.TransmissionMode;
import java.nio.ByteBuffer;
import java.util.HexFormat;
import org.junit.jupiter.api.Test;

class RequestCodecTest {

    @Test
    void compactRequestIs28BytesInSpecOrder() {
        ByteBuffer b = ByteBuffer.allocate(64);
        RequestCodec.encode(b, TransmissionMode.STRUCTURED, Command.WRITE, CommandFlag.FUA, 0x0102030405060708L, 0x1000, 512);
        assertEquals(28, b.position());
        assertEquals("25609513" + "0001" + "0001" + "0102030405060708" + "0000000000001000" + "00000200",
                HexFormat.of().formatHex(b.array(), 0, 28));
    }

    @Test
    void extendedWriteCarriesPayloadLenAnd64BitLength() throws ProtocolException {
        ByteBuffer b = ByteBuffer.allocate(64);
        RequestCodec.encode(b, TransmissionMode.EXTENDED, Command.WRITE, 0, 7, 1L << 40, 4096);
        assertEquals(32, b.position());
        b.flip();
        RequestHeader h = RequestCodec.decode(b, TransmissionMode.EXTENDED, 1 << 25);
        assertEquals(new RequestHeader(CommandFlag.PAYLOAD_LEN, 1, 7, 1L << 40, 4096, true), h);
        assertEquals(4096, h.payloadLength());
        assertEquals(Command.WRITE, h.command());
    }

    @Test
    void extendedTrimUsesAn64BitEffectLengthWithoutPayload() throws ProtocolException {
        ByteBuffer b = ByteBuffer.allocate(64);
        RequestCodec.encode(b, TransmissionMode.EXTENDED, Command.TRIM, 0, 1, 0, 1L << 34);
        b.flip();
        RequestHeader h = RequestCodec.decode(b, TransmissionMode.EXTENDED, 1 << 25);
        assertEquals(1L << 34, h.length());
        assertEquals(0, h.payloadLength());
    }

    @Test
    void compactLengthAbove32BitsIsRefusedAtEncode() {
        assertThrows(IllegalArgumentException.class, () -> RequestCodec.encode(ByteBuffer.allocate(64),
                TransmissionMode.SIMPLE, Command.TRIM, 0, 1, 0, 1L << 32));
    }

    @Test
    void decodeNeedsTheWholeHeader() throws ProtocolException {
        ByteBuffer b = ByteBuffer.allocate(27);
        assertNull(RequestCodec.decode(b, TransmissionMode.SIMPLE, 1 << 25));
        assertEquals(0, b.position());
    }

    @Test
    void decodeRejectsBadMagic() {
        ByteBuffer b = ByteBuffer.allocate(28);
        b.putInt(0, 0x25609514);
        var e = assertThrows(ProtocolException.class, () -> RequestCodec.decode(b, TransmissionMode.SIMPLE, 1 << 25));
        assertInstanceOf(ProtocolViolation.BadMagic.class, e.violation());
    }

    @Test
    void decodeRejectsOversizeWritePayload() {
        ByteBuffer b = ByteBuffer.allocate(28);
        RequestCodec.encode(b, TransmissionMode.SIMPLE, Command.WRITE, 0, 1, 0, 0xffff_ffffL);
        b.flip();
        var e = assertThrows(ProtocolException.class, () -> RequestCodec.decode(b, TransmissionMode.SIMPLE, 1 << 25));
        assertEquals(new ProtocolViolation.OversizeLength("request payload", 0xffff_ffffL, 1 << 25), e.violation());
    }
}
