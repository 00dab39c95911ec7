package io.nbdgate.protocol.wire;

import io.nbdgate.protocol.NbdError;
import io.nbdgate.protocol.NbdMagic;
import io.nbdgate.protocol.NbdSizes;
import io.nbdgate.protocol.ReplyType;
import io.nbdgate.protocol.TransmissionMode;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;

/**
 * Encoders for the server side of the transmission phase. Each method writes at {@code dst}'s position
 * and advances it; data payloads are not copied here, the caller sends them after the header.
 */
public final class ReplyCodec {
    private ReplyCodec() {}

    /** 16-byte simple reply; READ data (if error is 0) follows. */
    public static void simpleReply(ByteBuffer dst, int error, long cookie) {
        dst.putInt(NbdMagic.SIMPLE_REPLY);
        dst.putInt(error);
        dst.putLong(cookie);
    }

    /**
     * A chunk header: 20 bytes (structured) or 32 bytes (extended, which repeats the request offset).
     * {@code payloadLength} counts everything after the header.
     */
    public static void chunkHeader(ByteBuffer dst, TransmissionMode mode, int flags, ReplyType type, long cookie,
                                   long requestOffset, long payloadLength) {
        chunkHeader(dst, mode, flags, type.code(), cookie, requestOffset, payloadLength);
    }

    /** As above with a raw type, so tests can emit types this implementation does not know. */
    public static void chunkHeader(ByteBuffer dst, TransmissionMode mode, int flags, int type, long cookie,
                                   long requestOffset, long payloadLength) {
        if (mode == TransmissionMode.EXTENDED) {
            dst.putInt(NbdMagic.EXTENDED_REPLY);
            dst.putShort((short) flags);
            dst.putShort((short) type);
            dst.putLong(cookie);
            dst.putLong(requestOffset);
            dst.putLong(payloadLength);
        } else if (mode == TransmissionMode.STRUCTURED) {
            dst.putInt(NbdMagic.STRUCTURED_REPLY);
            dst.putShort((short) flags);
            dst.putShort((short) type);
            dst.putLong(cookie);
            dst.putInt((int) payloadLength);
        } else {
            throw new IllegalStateException("structured replies were not negotiated");
        }
    }

    /** NBD_REPLY_TYPE_NONE with DONE: success of a request without payload. */
    public static void none(ByteBuffer dst, TransmissionMode mode, long cookie, long requestOffset) {
        chunkHeader(dst, mode, ReplyType.FLAG_DONE, ReplyType.NONE, cookie, requestOffset, 0);
    }

    /** Header and offset of an OFFSET_DATA chunk; {@code dataLength} data bytes must follow. */
    public static void offsetDataHeader(ByteBuffer dst, TransmissionMode mode, int flags, long cookie,
                                        long requestOffset, long dataOffset, long dataLength) {
        chunkHeader(dst, mode, flags, ReplyType.OFFSET_DATA, cookie, requestOffset, dataLength + 8);
        dst.putLong(dataOffset);
    }

    /** A complete OFFSET_HOLE chunk. */
    public static void offsetHole(ByteBuffer dst, TransmissionMode mode, int flags, long cookie, long requestOffset,
                                  long holeOffset, int holeSize) {
        chunkHeader(dst, mode, flags, ReplyType.OFFSET_HOLE, cookie, requestOffset, 12);
        dst.putLong(holeOffset);
        dst.putInt(holeSize);
    }

    /** A complete ERROR chunk (with DONE) carrying a human-readable message. */
    public static void error(ByteBuffer dst, TransmissionMode mode, long cookie, long requestOffset, NbdError error,
                             String message) {
        byte[] msg = truncatedUtf8(message);
        chunkHeader(dst, mode, ReplyType.FLAG_DONE, ReplyType.ERROR, cookie, requestOffset, 6 + msg.length);
        dst.putInt(error.code());
        dst.putShort((short) msg.length);
        dst.put(msg);
    }

    /** A complete ERROR_OFFSET chunk; {@code flags} decides whether it ends the reply. */
    public static void errorOffset(ByteBuffer dst, TransmissionMode mode, int flags, long cookie, long requestOffset,
                                   NbdError error, String message, long errorOffset) {
        byte[] msg = truncatedUtf8(message);
        chunkHeader(dst, mode, flags, ReplyType.ERROR_OFFSET, cookie, requestOffset, 14 + msg.length);
        dst.putInt(error.code());
        dst.putShort((short) msg.length);
        dst.put(msg);
        dst.putLong(errorOffset);
    }

    /**
     * A complete block status chunk: BLOCK_STATUS (structured) or BLOCK_STATUS_EXT (extended).
     * {@code lengths} and {@code states} are the descriptors, in order.
     */
    public static void blockStatus(ByteBuffer dst, TransmissionMode mode, int flags, long cookie, long requestOffset,
                                   int contextId, long[] lengths, long[] states) {
        int n = lengths.length;
        if (mode == TransmissionMode.EXTENDED) {
            chunkHeader(dst, mode, flags, ReplyType.BLOCK_STATUS_EXT, cookie, requestOffset, 8 + 16L * n);
            dst.putInt(contextId);
            dst.putInt(n);
            for (int i = 0; i < n; i++) {
                dst.putLong(lengths[i]);
                dst.putLong(states[i]);
            }
        } else {
            chunkHeader(dst, mode, flags, ReplyType.BLOCK_STATUS, cookie, requestOffset, 4 + 8L * n);
            dst.putInt(contextId);
            for (int i = 0; i < n; i++) {
                dst.putInt((int) lengths[i]);
                dst.putInt((int) states[i]);
            }
        }
    }

    /** Bytes an encoded error message will take; messages are cut at the spec's 4096-byte limit. */
    public static int errorMessageLength(String message) {
        return truncatedUtf8(message).length;
    }

    private static byte[] truncatedUtf8(String message) {
        byte[] b = message == null ? new byte[0] : message.getBytes(StandardCharsets.UTF_8);
        if (b.length <= NbdSizes.MAX_STRING) {
            return b;
        }
        byte[] cut = new byte[NbdSizes.MAX_STRING];
        System.arraycopy(b, 0, cut, 0, cut.length);
        return cut;
    }
}
