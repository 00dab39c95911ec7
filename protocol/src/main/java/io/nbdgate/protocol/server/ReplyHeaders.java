package io.nbdgate.protocol.server;

import io.nbdgate.protocol.NbdMagic;
import io.nbdgate.protocol.NbdSizes;
import io.nbdgate.protocol.ReplyType;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;

/**
 * The reply headers and small payloads a server writes; data payloads are appended by the caller
 * so they are never copied here.
 */
public final class ReplyHeaders {
    private ReplyHeaders() {}

    /** Simple reply: magic, error, cookie (16 bytes); READ data follows on success. */
    public static ByteBuffer simple(long cookie, int error) {
        return ByteBuffer.allocate(NbdSizes.SIMPLE_REPLY_HEADER)
                .putInt(NbdMagic.SIMPLE_REPLY).putInt(error).putLong(cookie).flip();
    }

    /**
     * A structured (20 bytes) or extended (32 bytes) chunk header. {@code requestOffset} is only
     * written in extended mode, where it must echo the request's offset.
     */
    public static ByteBuffer chunk(boolean extended, int flags, ReplyType type, long cookie, long requestOffset, long payloadLength) {
        if (extended) {
            return ByteBuffer.allocate(NbdSizes.EXTENDED_REPLY_HEADER)
                    .putInt(NbdMagic.EXTENDED_REPLY).putShort((short) flags).putShort((short) type.code())
                    .putLong(cookie).putLong(requestOffset).putLong(payloadLength).flip();
        }
        return ByteBuffer.allocate(NbdSizes.STRUCTURED_REPLY_HEADER)
                .putInt(NbdMagic.STRUCTURED_REPLY).putShort((short) flags).putShort((short) type.code())
                .putLong(cookie).putInt(Math.toIntExact(payloadLength)).flip();
    }

    /** OFFSET_DATA chunk header plus its 8-byte offset; {@code dataLength} bytes of data follow. */
    public static ByteBuffer offsetData(boolean extended, int flags, long cookie, long requestOffset, long dataOffset, int dataLength) {
        ByteBuffer header = chunk(extended, flags, ReplyType.OFFSET_DATA, cookie, requestOffset, 8L + dataLength);
        return ByteBuffer.allocate(header.remaining() + 8).put(header).putLong(dataOffset).flip();
    }

    /** A whole OFFSET_HOLE chunk: offset and 32-bit hole size. */
    public static ByteBuffer offsetHole(boolean extended, int flags, long cookie, long requestOffset, long holeOffset, int holeLength) {
        ByteBuffer header = chunk(extended, flags, ReplyType.OFFSET_HOLE, cookie, requestOffset, 12);
        return ByteBuffer.allocate(header.remaining() + 12).put(header).putLong(holeOffset).putInt(holeLength).flip();
    }

    /** A whole ERROR chunk with the DONE flag: error value and a message for a human. */
    public static ByteBuffer error(boolean extended, long cookie, long requestOffset, int error, String message) {
        byte[] m = message.getBytes(StandardCharsets.UTF_8);
        if (m.length > NbdSizes.MAX_STRING) m = java.util.Arrays.copyOf(m, NbdSizes.MAX_STRING);
        ByteBuffer header = chunk(extended, ReplyType.FLAG_DONE, ReplyType.ERROR, cookie, requestOffset, 6 + m.length);
        return ByteBuffer.allocate(header.remaining() + 6 + m.length)
                .put(header).putInt(error).putShort((short) m.length).put(m).flip();
    }

    /** A NONE chunk with DONE: success of a command without payload. */
    public static ByteBuffer done(boolean extended, long cookie, long requestOffset) {
        return chunk(extended, ReplyType.FLAG_DONE, ReplyType.NONE, cookie, requestOffset, 0);
    }
}
