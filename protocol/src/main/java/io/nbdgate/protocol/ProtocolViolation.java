package io.nbdgate.protocol;

/**
 * Something the peer sent that the spec forbids. Every such case ends the connection (a hard
 * disconnect, as proto.md allows); the value says what was wrong so the log line is actionable.
 */
public sealed interface ProtocolViolation {

    /** One line for logs and users. */
    String message();

    /** A magic number that is not the one this position of the stream must carry. */
    record BadMagic(String where, long expected, long actual) implements ProtocolViolation {
        @Override
        public String message() {
            return "bad magic in " + where + ": expected 0x" + Long.toHexString(expected)
                    + ", got 0x" + Long.toHexString(actual);
        }
    }

    /** A length field larger than this side accepts (denial-of-service guard or spec limit). */
    record OversizeLength(String what, long length, long limit) implements ProtocolViolation {
        @Override
        public String message() {
            return what + " length " + Long.toUnsignedString(length) + " exceeds limit " + limit;
        }
    }

    /** A reply for a cookie that no request in flight carries. */
    record UnknownCookie(long cookie) implements ProtocolViolation {
        @Override
        public String message() {
            return "reply for unknown cookie 0x" + Long.toHexString(cookie);
        }
    }

    /** A content or error chunk that lies (partly) outside the offset and length of its request. */
    record ChunkOutsideRequest(long cookie, long chunkOffset, long chunkLength, long requestOffset, long requestLength)
            implements ProtocolViolation {
        @Override
        public String message() {
            return "chunk [" + Long.toUnsignedString(chunkOffset) + ", +" + Long.toUnsignedString(chunkLength)
                    + ") outside request [" + requestOffset + ", +" + requestLength + ") of cookie 0x"
                    + Long.toHexString(cookie);
        }
    }

    /** A content chunk that overlaps an earlier chunk of the same reply. */
    record OverlappingChunk(long cookie, long chunkOffset, long chunkLength) implements ProtocolViolation {
        @Override
        public String message() {
            return "chunk [" + chunkOffset + ", +" + chunkLength + ") overlaps an earlier chunk of cookie 0x"
                    + Long.toHexString(cookie);
        }
    }

    /** A chunk type this client does not know and that lacks the error bit 15. */
    record UnknownChunkType(int type) implements ProtocolViolation {
        @Override
        public String message() {
            return "unknown structured reply type " + type + " without error bit";
        }
    }

    /** A known chunk or reply that is not allowed for this request or in the negotiated mode. */
    record UnexpectedReply(String why) implements ProtocolViolation {
        @Override
        public String message() {
            return "unexpected reply: " + why;
        }
    }

    /** Fields inside a message that contradict each other or the spec. */
    record MalformedMessage(String what, String why) implements ProtocolViolation {
        @Override
        public String message() {
            return "malformed " + what + ": " + why;
        }
    }
}
