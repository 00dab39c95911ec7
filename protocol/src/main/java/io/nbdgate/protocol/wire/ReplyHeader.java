package io.nbdgate.protocol.wire;

import io.nbdgate.protocol.NbdMagic;
import io.nbdgate.protocol.NbdSizes;
import io.nbdgate.protocol.ProtocolViolation;
import io.nbdgate.protocol.TransmissionMode;
import java.nio.ByteBuffer;

/**
 * One reply header in any of the three formats: a simple reply (16 bytes), a structured reply chunk (20)
 * or an extended one (32, repeating the request's offset). Reused for every header of a connection.
 */
final class ReplyHeader extends PartDecoder {
    private boolean simple;
    private long cookie;
    private int error;
    private int flags;
    private int type;
    private long length;
    private long requestOffset;

    /**
     * Reads the header at {@code in}'s position, consuming it only when it is whole: DONE, NEED_MORE (nothing
     * consumed; {@link #needed()}) or VIOLATION (bad magic, or a format {@code mode} did not negotiate).
     */
    ChunkProgress read(ByteBuffer in, TransmissionMode mode) {
        int p = in.position();
        if (in.remaining() < 4) {
            return needMore(4);
        }
        int magic = in.getInt(p);
        if (mode == TransmissionMode.EXTENDED) {
            if (magic != NbdMagic.EXTENDED_REPLY) {
                return fail(new ProtocolViolation.BadMagic("extended reply header", NbdMagic.EXTENDED_REPLY, magic));
            }
            if (in.remaining() < NbdSizes.EXTENDED_REPLY_HEADER) {
                return needMore(NbdSizes.EXTENDED_REPLY_HEADER);
            }
            chunk(in, p, in.getLong(p + 24));
            requestOffset = in.getLong(p + 16);
            in.position(p + NbdSizes.EXTENDED_REPLY_HEADER);
            return ChunkProgress.DONE;
        }
        if (magic == NbdMagic.SIMPLE_REPLY) {
            if (in.remaining() < NbdSizes.SIMPLE_REPLY_HEADER) {
                return needMore(NbdSizes.SIMPLE_REPLY_HEADER);
            }
            simple = true;
            error = in.getInt(p + 4);
            cookie = in.getLong(p + 8);
            in.position(p + NbdSizes.SIMPLE_REPLY_HEADER);
            return ChunkProgress.DONE;
        }
        if (magic == NbdMagic.STRUCTURED_REPLY) {
            if (mode != TransmissionMode.STRUCTURED) {
                return fail(new ProtocolViolation.UnexpectedReply(
                        "structured reply chunk but structured replies were not negotiated"));
            }
            if (in.remaining() < NbdSizes.STRUCTURED_REPLY_HEADER) {
                return needMore(NbdSizes.STRUCTURED_REPLY_HEADER);
            }
            chunk(in, p, Integer.toUnsignedLong(in.getInt(p + 16)));
            requestOffset = -1;
            in.position(p + NbdSizes.STRUCTURED_REPLY_HEADER);
            return ChunkProgress.DONE;
        }
        return fail(new ProtocolViolation.BadMagic("reply header",
                mode == TransmissionMode.SIMPLE ? NbdMagic.SIMPLE_REPLY : NbdMagic.STRUCTURED_REPLY, magic));
    }

    /**
     * Bytes that can be read at a reply boundary without taking any request data: a simple reply's header
     * may be followed by data at once; a chunk header is followed by at least the 8-byte offset of an
     * OFFSET_DATA chunk (or by another header, and a simple reply carries no data once chunks are on).
     */
    static int boundaryReadAhead(TransmissionMode mode) {
        return switch (mode) {
            case SIMPLE -> NbdSizes.SIMPLE_REPLY_HEADER;
            case STRUCTURED -> NbdSizes.STRUCTURED_REPLY_HEADER + 8;
            case EXTENDED -> NbdSizes.EXTENDED_REPLY_HEADER + 8;
        };
    }

    /** A simple reply; otherwise a chunk with {@link #flags()}, {@link #type()} and {@link #length()}. */
    boolean simple() {
        return simple;
    }

    long cookie() {
        return cookie;
    }

    /** A simple reply's error value. */
    int error() {
        return error;
    }

    int flags() {
        return flags;
    }

    int type() {
        return type;
    }

    /** Payload bytes after a chunk header. */
    long length() {
        return length;
    }

    /** The request offset an extended header repeats, or -1. */
    long requestOffset() {
        return requestOffset;
    }

    private void chunk(ByteBuffer in, int p, long payloadLength) {
        simple = false;
        flags = Short.toUnsignedInt(in.getShort(p + 4));
        type = Short.toUnsignedInt(in.getShort(p + 6));
        cookie = in.getLong(p + 8);
        length = payloadLength;
    }
}
