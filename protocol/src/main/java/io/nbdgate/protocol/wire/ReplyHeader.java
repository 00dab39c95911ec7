package io.nbdgate.protocol.wire;

import io.nbdgate.protocol.Command;
import io.nbdgate.protocol.NbdMagic;
import io.nbdgate.protocol.NbdSizes;
import io.nbdgate.protocol.ProtocolViolation;
import io.nbdgate.protocol.ReplyType;
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

    /**
     * Why this header cannot answer {@code request} on a connection in {@code mode}, or null when it can
     * (proto.md, "Structured reply types"). An unknown chunk type is fine only as an error chunk.
     */
    ProtocolViolation refusal(SentRequest request, TransmissionMode mode) {
        Command command = request.command();
        if (simple) {
            // With structured replies a READ must not get a simple reply; an error one carries no payload,
            // so it is unambiguous and accepted, a success one would leave the stream undecodable.
            return command == Command.READ && mode == TransmissionMode.STRUCTURED && error == 0
                    ? new ProtocolViolation.UnexpectedReply("simple reply to READ after structured replies were negotiated")
                    : null;
        }
        if (mode == TransmissionMode.EXTENDED && requestOffset != request.offset()) {
            return new ProtocolViolation.MalformedMessage("extended reply header",
                    "offset " + requestOffset + " does not match the request's " + request.offset());
        }
        if (length < 0) {
            return new ProtocolViolation.OversizeLength("reply chunk", length, Long.MAX_VALUE);
        }
        ReplyType known = ReplyType.fromCode(type);
        if (known == null) {
            return ReplyType.isError(type) ? null : new ProtocolViolation.UnknownChunkType(type);
        }
        return switch (known) {
            case NONE -> length != 0
                    ? new ProtocolViolation.MalformedMessage("NONE chunk", "length " + length + " is not 0")
                    : (flags & ReplyType.FLAG_DONE) == 0
                    ? new ProtocolViolation.MalformedMessage("NONE chunk", "DONE flag not set") : null;
            case OFFSET_DATA -> command != Command.READ
                    ? new ProtocolViolation.UnexpectedReply("OFFSET_DATA chunk for " + command)
                    : length < 9 ? new ProtocolViolation.MalformedMessage("OFFSET_DATA chunk", "length " + length + " < 9")
                    : length - 8 > request.length()
                    ? new ProtocolViolation.OversizeLength("OFFSET_DATA chunk", length - 8, request.length()) : null;
            case OFFSET_HOLE -> command != Command.READ
                    ? new ProtocolViolation.UnexpectedReply("OFFSET_HOLE chunk for " + command)
                    : length != 12
                    ? new ProtocolViolation.MalformedMessage("OFFSET_HOLE chunk", "length " + length + " is not 12") : null;
            case BLOCK_STATUS, BLOCK_STATUS_EXT -> command != Command.BLOCK_STATUS
                    ? new ProtocolViolation.UnexpectedReply(known + " chunk for " + command)
                    : (known == ReplyType.BLOCK_STATUS_EXT) != (mode == TransmissionMode.EXTENDED)
                    ? new ProtocolViolation.UnexpectedReply(known + " chunk in " + mode + " mode") : null;
            case ERROR, ERROR_OFFSET -> null;
        };
    }

    private void chunk(ByteBuffer in, int p, long payloadLength) {
        simple = false;
        flags = Short.toUnsignedInt(in.getShort(p + 4));
        type = Short.toUnsignedInt(in.getShort(p + 6));
        cookie = in.getLong(p + 8);
        length = payloadLength;
    }
}
