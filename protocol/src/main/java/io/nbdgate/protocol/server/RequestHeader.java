package io.nbdgate.protocol.server;

import io.nbdgate.protocol.CommandFlag;
import io.nbdgate.protocol.NbdMagic;
import io.nbdgate.protocol.NbdSizes;
import java.nio.ByteBuffer;

/**
 * A request header as the server reads it: 28 bytes compact, 32 bytes with extended headers.
 * {@code length} is unsigned 32-bit compact, 64-bit extended; {@code payloadLength} is how many
 * bytes follow the header. Written here because the server needed it before the shared codec.
 */
public record RequestHeader(int flags, int type, long cookie, long offset, long length, long payloadLength) {

    /** Decoding gives a header or a violation the connection ends with; never an exception. */
    public sealed interface Decoded permits Ok, Violation {}

    public record Ok(RequestHeader header) implements Decoded {}

    public record Violation(String reason) implements Decoded {}

    public static int size(boolean extended) {
        return extended ? NbdSizes.EXTENDED_REQUEST_HEADER : NbdSizes.REQUEST_HEADER;
    }

    /**
     * Decodes one header from exactly {@link #size} bytes. In compact mode only WRITE carries a
     * payload; in extended mode whatever sets PAYLOAD_LEN does.
     */
    public static Decoded decode(ByteBuffer b, boolean extended, int writeType) {
        if (b.remaining() != size(extended)) {
            return new Violation("request header of " + b.remaining() + " bytes, expected " + size(extended));
        }
        int magic = b.getInt();
        int expected = extended ? NbdMagic.EXTENDED_REQUEST : NbdMagic.REQUEST;
        if (magic != expected) {
            return new Violation("bad request magic 0x" + Integer.toHexString(magic) + ", expected 0x" + Integer.toHexString(expected));
        }
        int flags = Short.toUnsignedInt(b.getShort());
        int type = Short.toUnsignedInt(b.getShort());
        long cookie = b.getLong();
        long offset = b.getLong();
        long length = extended ? b.getLong() : Integer.toUnsignedLong(b.getInt());
        long payload;
        if (extended) {
            payload = (flags & CommandFlag.PAYLOAD_LEN) != 0 ? length : 0;
            if (type == writeType && payload == 0 && length != 0) {
                return new Violation("extended WRITE without PAYLOAD_LEN");
            }
        } else {
            payload = type == writeType ? length : 0;
        }
        return new Ok(new RequestHeader(flags, type, cookie, offset, length, payload));
    }
}
