package io.nbdgate.protocol.wire;

import io.nbdgate.protocol.ProtocolViolation;
import java.nio.ByteBuffer;

/**
 * The part of a READ's buffer the stream fills next: the payload of a simple reply or of an OFFSET_DATA chunk,
 * received into the buffer by the caller, or an OFFSET_HOLE that reads as zeroes. Offsets count from the
 * request's first byte. Decodes the 8-byte prefix of OFFSET_DATA and the 12-byte OFFSET_HOLE payload.
 */
final class ReadRange extends PartDecoder {
    private long offset;
    private long remaining;
    private long holeLength;
    private boolean hole;

    /** A simple reply's data: the whole request. */
    void whole(InFlightRequests.Slot<?> s) {
        hole = false;
        offset = 0;
        remaining = s.request.length();
        s.coverage.add(0, remaining);
    }

    /** OFFSET_DATA's offset, then {@code chunkLength - 8} bytes of data for {@code s}. */
    ChunkProgress readData(ByteBuffer in, InFlightRequests.Slot<?> s, long chunkLength) {
        if (in.remaining() < 8) {
            return needMore(8);
        }
        long off = in.getLong();
        long len = chunkLength - 8;
        ProtocolViolation bad = s.claim(off, len);
        if (bad != null) {
            return fail(bad);
        }
        hole = false;
        offset = off - s.request.offset();
        remaining = len;
        return ChunkProgress.DONE;
    }

    /** OFFSET_HOLE's offset and size: a range of {@code s} that reads as zeroes. */
    ChunkProgress readHole(ByteBuffer in, InFlightRequests.Slot<?> s) {
        if (in.remaining() < 12) {
            return needMore(12);
        }
        long off = in.getLong();
        long size = Integer.toUnsignedLong(in.getInt());
        if (size == 0) {
            return fail(new ProtocolViolation.MalformedMessage("OFFSET_HOLE chunk", "hole size is 0"));
        }
        ProtocolViolation bad = s.claim(off, size);
        if (bad != null) {
            return fail(bad);
        }
        hole = true;
        offset = off - s.request.offset();
        holeLength = size;
        remaining = 0;
        return ChunkProgress.DONE;
    }

    /** The hole was reported; what follows is the next part of the stream. */
    void holeReported() {
        hole = false;
    }

    long offset() {
        return offset;
    }

    /** Data bytes still to receive, or the hole's size while a hole is reported. */
    long length() {
        return hole ? holeLength : remaining;
    }

    long remaining() {
        return remaining;
    }

    void received(long n) {
        offset += n;
        remaining -= n;
    }

    /** Moves as much of the range as {@code in} holds into {@code requestBuffer}; never past its capacity. */
    int copy(ByteBuffer in, ByteBuffer requestBuffer) {
        int n = (int) Math.min(in.remaining(), remaining);
        if (offset + n > requestBuffer.capacity()) {
            throw new IndexOutOfBoundsException("request buffer of " + requestBuffer.capacity()
                    + " bytes is smaller than the request");
        }
        requestBuffer.put((int) offset, in, in.position(), n);
        in.position(in.position() + n);
        received(n);
        return n;
    }
}
