package io.nbdgate.protocol.wire;

import io.nbdgate.protocol.NbdError;
import io.nbdgate.protocol.NbdSizes;
import io.nbdgate.protocol.ProtocolViolation;
import io.nbdgate.protocol.ReplyType;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;

/**
 * The payload of an error chunk (ERROR, ERROR_OFFSET, or a type unknown to us with the error bit set): the
 * error value, the server's message and, for ERROR_OFFSET, the offset the error is about. Bytes after the
 * part this client understands are left for the caller to skip ({@link #remaining()}).
 */
final class ErrorChunk extends PartDecoder {
    // The spec caps messages at 4096 bytes; the fixed fields are small.
    private static final long MAX_LENGTH = NbdSizes.MAX_STRING + 64L;

    private enum Part { HEAD, MESSAGE, OFFSET }

    private Part part;
    private boolean withOffset;
    private long remaining;
    private int code;
    private int messageLength;
    private String message;
    private long offset;

    /** Starts a chunk of {@code type} with {@code length} payload bytes; a violation if that length cannot be right. */
    ProtocolViolation begin(int type, long length) {
        withOffset = type == ReplyType.ERROR_OFFSET.code();
        int min = withOffset ? 14 : 6;
        if (length < min) {
            return new ProtocolViolation.MalformedMessage("error chunk type " + type, "length " + length + " < " + min);
        }
        if (length > MAX_LENGTH) {
            return new ProtocolViolation.OversizeLength("error chunk", length, MAX_LENGTH);
        }
        part = Part.HEAD;
        remaining = length;
        message = null;
        offset = -1;
        return null;
    }

    ChunkProgress decode(ByteBuffer in) {
        while (true) {
            switch (part) {
                case HEAD -> {
                    if (in.remaining() < 6) {
                        return needMore(6);
                    }
                    code = in.getInt();
                    messageLength = Short.toUnsignedInt(in.getShort());
                    remaining -= 6;
                    if (messageLength > remaining - (withOffset ? 8 : 0)) {
                        return fail(new ProtocolViolation.MalformedMessage("error chunk",
                                "message length " + messageLength + " exceeds chunk length"));
                    }
                    if (messageLength > NbdSizes.MAX_STRING) {
                        return fail(new ProtocolViolation.OversizeLength("error message", messageLength, NbdSizes.MAX_STRING));
                    }
                    if (code == 0) {
                        return fail(new ProtocolViolation.MalformedMessage("error chunk", "error value is 0"));
                    }
                    part = Part.MESSAGE;
                }
                case MESSAGE -> {
                    if (in.remaining() < messageLength) {
                        return needMore(messageLength);
                    }
                    if (messageLength > 0) {
                        byte[] b = new byte[messageLength];
                        in.get(b);
                        message = new String(b, StandardCharsets.UTF_8);
                    }
                    remaining -= messageLength;
                    if (!withOffset) {
                        return ChunkProgress.DONE;
                    }
                    part = Part.OFFSET;
                }
                case OFFSET -> {
                    if (in.remaining() < 8) {
                        return needMore(8);
                    }
                    offset = in.getLong();
                    remaining -= 8;
                    return ChunkProgress.DONE;
                }
            }
        }
    }

    NbdError error() {
        return NbdError.fromWire(code);
    }

    /** The server's message, or null. */
    String message() {
        return message;
    }

    /** True for ERROR_OFFSET: {@link #offset()} names the byte the error is about. */
    boolean hasOffset() {
        return withOffset;
    }

    long offset() {
        return offset;
    }

    /** Payload bytes after the decoded part. */
    long remaining() {
        return remaining;
    }
}
