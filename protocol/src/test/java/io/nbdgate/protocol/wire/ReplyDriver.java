package io.nbdgate.protocol.wire;

import io.nbdgate.protocol.NbdError;
import io.nbdgate.protocol.ProtocolViolation;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * Feeds a server byte stream into a reassembler the way a connection does (in pieces of a given size,
 * accumulating headers), copying data into each request's own buffer and zero-filling holes.
 */
final class ReplyDriver {

    /** A request's buffer; the reassembler's attachment. */
    static final class Target {
        final String name;
        final ByteBuffer buffer;

        Target(String name, int length, byte fill) {
            this.name = name;
            byte[] b = new byte[length];
            Arrays.fill(b, fill);
            this.buffer = ByteBuffer.wrap(b);
        }

        byte[] bytes() {
            return buffer.array();
        }
    }

    record Completion(String name, NbdError error, String message, long errorOffset) {}

    record Extent(int context, long length, long flags) {}

    final List<Completion> completions = new ArrayList<>();
    final List<Extent> extents = new ArrayList<>();
    ProtocolViolation violation;

    /** Runs the whole stream; stops at the first violation. */
    ReplyDriver run(ReplyReassembler<Target> r, byte[] stream, int piece) {
        ByteBuffer acc = ByteBuffer.allocate(stream.length + 64);
        acc.flip();
        int fed = 0;
        while (true) {
            ReplyReassembler.Step step = r.next(acc);
            switch (step) {
                case NEED_MORE -> {
                    if (fed == stream.length) {
                        return this;
                    }
                    acc.compact();
                    int n = Math.min(piece, stream.length - fed);
                    acc.put(stream, fed, n);
                    fed += n;
                    acc.flip();
                }
                case DATA -> {
                    if (!acc.hasRemaining()) {
                        if (fed == stream.length) {
                            return this;
                        }
                        acc.compact();
                        int n = Math.min(piece, stream.length - fed);
                        acc.put(stream, fed, n);
                        fed += n;
                        acc.flip();
                    }
                    r.copyData(acc, r.dataAttachment().buffer);
                }
                case ZEROES -> {
                    ByteBuffer b = r.dataAttachment().buffer;
                    for (long i = 0; i < r.dataLength(); i++) {
                        b.put((int) (r.dataOffset() + i), (byte) 0);
                    }
                }
                case EXTENT -> extents.add(new Extent(r.extentContextId(), r.extentLength(), r.extentFlags()));
                case COMPLETED -> completions.add(new Completion(r.completedAttachment().name, r.completedError(),
                        r.completedMessage(), r.completedErrorOffset()));
                case VIOLATION -> {
                    violation = r.violation();
                    return this;
                }
            }
        }
    }
}
