package io.nbdgate.protocol.wire;

import io.nbdgate.protocol.Command;
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

    /** A request and its buffer, as the reassembler sees it. */
    static final class Target implements SentRequest {
        final String name;
        final ByteBuffer buffer;
        Command command;
        int flags;
        long offset;
        long length;

        Target(String name, int length, byte fill) {
            this.name = name;
            byte[] b = new byte[length];
            Arrays.fill(b, fill);
            this.buffer = ByteBuffer.wrap(b);
        }

        byte[] bytes() {
            return buffer.array();
        }

        @Override
        public Command command() {
            return command;
        }

        @Override
        public int flags() {
            return flags;
        }

        @Override
        public long offset() {
            return offset;
        }

        @Override
        public long length() {
            return length;
        }
    }

    /** Gives {@code t} the request's fields and registers it; returns the cookie. */
    static long register(ReplyReassembler<Target> r, Command command, int flags, long offset, long length, Target t) {
        t.command = command;
        t.flags = flags;
        t.offset = offset;
        t.length = length;
        return r.register(t);
    }

    record Completion(String name, NbdError error, String message, long errorOffset) {}

    record Extent(int context, long length, long flags) {}

    final List<Completion> completions = new ArrayList<>();
    final List<Extent> extents = new ArrayList<>();
    ProtocolViolation violation;
    long staged;

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
                default -> {
                    if (!record(step, r)) {
                        return this;
                    }
                }
            }
        }
    }

    /**
     * Feeds the stream the way the zero-copy connection receives it: header bytes only up to
     * {@link ReplyReassembler#safeReadAhead()} (a random part of it, like a short receive), data straight
     * from the stream into the request's buffer, and right after a data range is complete, up to
     * {@link ReplyReassembler#boundaryReadAhead()} more (the receive linked behind the data receive).
     * {@link #staged} counts data bytes that landed in the header buffer: a zero-copy connection could not
     * deliver those.
     */
    ReplyDriver runReadingAhead(ReplyReassembler<Target> r, byte[] stream, java.util.Random random) {
        ByteBuffer acc = ByteBuffer.allocate(stream.length + 64);
        acc.flip();
        int[] fed = {0};
        java.util.function.IntConsumer receive = limit -> {
            int room = limit - acc.remaining();
            int n = Math.min(stream.length - fed[0], random.nextBoolean() ? room : 1 + random.nextInt(Math.max(1, room)));
            if (n <= 0) {
                return;
            }
            acc.compact();
            acc.put(stream, fed[0], n);
            fed[0] += n;
            acc.flip();
        };
        while (true) {
            ReplyReassembler.Step step = r.next(acc);
            switch (step) {
                case NEED_MORE -> {
                    if (fed[0] == stream.length) {
                        return this;
                    }
                    receive.accept(r.safeReadAhead());
                }
                case DATA -> {
                    if (acc.hasRemaining()) {
                        staged += acc.remaining();
                        return this;
                    }
                    long remaining = r.dataLength();
                    int n = (int) Math.min(Math.min(remaining, stream.length - fed[0]), 1 + random.nextInt(4096));
                    if (n <= 0) {
                        return this;
                    }
                    ByteBuffer b = r.dataAttachment().buffer;
                    b.put((int) r.dataOffset(), stream, fed[0], n);
                    fed[0] += n;
                    r.dataReceived(n);
                    if (n == remaining && fed[0] < stream.length) {
                        receive.accept(r.boundaryReadAhead());
                    }
                }
                default -> {
                    if (!record(step, r)) {
                        return this;
                    }
                }
            }
        }
    }

    /** The steps both feeding disciplines handle alike; false after a violation. */
    private boolean record(ReplyReassembler.Step step, ReplyReassembler<Target> r) {
        switch (step) {
            case ZEROES -> {
                ByteBuffer b = r.dataAttachment().buffer;
                for (long i = 0; i < r.dataLength(); i++) {
                    b.put((int) (r.dataOffset() + i), (byte) 0);
                }
            }
            case EXTENT -> extents.add(new Extent(r.extentContextId(), r.extentLength(), r.extentFlags()));
            case COMPLETED -> completions.add(new Completion(r.completed().request().name, r.completed().error(),
                    r.completed().message(), r.completed().errorOffset()));
            case VIOLATION -> {
                violation = r.violation();
                return false;
            }
            default -> throw new IllegalStateException("step " + step + " is the caller's");
        }
        return true;
    }
}
