package io.nbdgate.protocol.wire;

import io.nbdgate.protocol.ProtocolViolation;
import io.nbdgate.protocol.ReplyType;
import java.nio.ByteBuffer;

/**
 * The payload of a BLOCK_STATUS chunk (context id, then 8-byte descriptors) or BLOCK_STATUS_EXT (context id
 * and descriptor count, then 16-byte descriptors), handed out one descriptor at a time: a reply may hold a
 * million of them, so they are never collected.
 */
final class BlockStatusChunk extends PartDecoder {
    // Replies SHOULD hold at most 2^20 descriptors; this only bounds a lie.
    private static final long MAX_LENGTH = 8 + 16L * (1 << 20);

    private ReplyType type;
    private boolean extended;
    private boolean prefixRead;
    private long remaining;
    private int contextId;
    private long extentLength;
    private long extentFlags;

    /** Starts a chunk of {@code type} with {@code length} payload bytes; a violation if that length cannot be right. */
    ProtocolViolation begin(ReplyType type, long length) {
        this.type = type;
        extended = type == ReplyType.BLOCK_STATUS_EXT;
        long prefix = extended ? 8 : 4;
        long unit = descriptorSize();
        if (length > MAX_LENGTH) {
            return new ProtocolViolation.OversizeLength(type + " chunk", length, MAX_LENGTH);
        }
        if (length < prefix + unit || (length - prefix) % unit != 0) {
            return new ProtocolViolation.MalformedMessage(type + " chunk", "length " + length);
        }
        prefixRead = false;
        remaining = length;
        return null;
    }

    /** EXTENT for each descriptor, DONE after the last. */
    ChunkProgress decode(ByteBuffer in) {
        if (!prefixRead) {
            if (in.remaining() < (extended ? 8 : 4)) {
                return needMore(extended ? 8 : 4);
            }
            contextId = in.getInt();
            remaining -= 4;
            if (extended) {
                long count = Integer.toUnsignedLong(in.getInt());
                remaining -= 4;
                if (count == 0 || count * 16 != remaining) {
                    return fail(new ProtocolViolation.MalformedMessage(type + " chunk",
                            "descriptor count " + count + " does not match length"));
                }
            }
            prefixRead = true;
        }
        if (remaining == 0) {
            return ChunkProgress.DONE;
        }
        int unit = descriptorSize();
        if (in.remaining() < unit) {
            return needMore(unit);
        }
        if (extended) {
            extentLength = in.getLong();
            extentFlags = in.getLong();
        } else {
            extentLength = Integer.toUnsignedLong(in.getInt());
            extentFlags = Integer.toUnsignedLong(in.getInt());
        }
        remaining -= unit;
        if (extentLength == 0) {
            return fail(new ProtocolViolation.MalformedMessage("block status descriptor", "extent length 0"));
        }
        return ChunkProgress.EXTENT;
    }

    int contextId() {
        return contextId;
    }

    long extentLength() {
        return extentLength;
    }

    long extentFlags() {
        return extentFlags;
    }

    private int descriptorSize() {
        return extended ? 16 : 8;
    }
}
