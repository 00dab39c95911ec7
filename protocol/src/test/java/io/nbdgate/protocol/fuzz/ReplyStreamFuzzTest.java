package io.nbdgate.protocol.fuzz;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import com.code_intelligence.jazzer.junit.FuzzTest;
import io.nbdgate.protocol.Command;
import io.nbdgate.protocol.TransmissionMode;
import io.nbdgate.protocol.wire.ReplyReassembler;
import io.nbdgate.protocol.wire.SentRequest;
import java.nio.ByteBuffer;

/**
 * Mutated server byte streams into the reply reassembler. Any exception escaping is a finding; so is a
 * DATA or ZEROES range outside its request or a byte written into the guard zones around a request buffer.
 * Input layout (see {@link FuzzSeeds}): mode, request count, per request command/flags/offset/length, then
 * the server stream.
 */
class ReplyStreamFuzzTest {

    static final int GUARD = 16;
    static final byte GUARD_BYTE = (byte) 0xA5;

    static final class Request implements SentRequest {
        final Command command;
        final int flags;
        final long offset;
        final int length;
        final byte[] backing;
        final ByteBuffer buffer;

        Request(Command command, int flags, long offset, int length) {
            this.command = command;
            this.flags = flags;
            this.offset = offset;
            this.length = length;
            this.backing = new byte[length + 2 * GUARD];
            java.util.Arrays.fill(backing, GUARD_BYTE);
            this.buffer = ByteBuffer.wrap(backing).slice(GUARD, length);
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

    @FuzzTest(maxDuration = "10s")
    void replyStream(byte[] input) {
        ByteBuffer in = ByteBuffer.wrap(input);
        if (in.remaining() < 2) {
            return;
        }
        TransmissionMode mode = TransmissionMode.values()[Byte.toUnsignedInt(in.get()) % 3];
        int count = 1 + Byte.toUnsignedInt(in.get()) % 4;
        var r = new ReplyReassembler<Request>(mode, 4);
        Request[] requests = new Request[count];
        for (int i = 0; i < count; i++) {
            if (in.remaining() < 11) {
                return;
            }
            Command c = Command.values()[Byte.toUnsignedInt(in.get()) % Command.values().length];
            int flags = Short.toUnsignedInt(in.getShort());
            long offset = Integer.toUnsignedLong(in.getInt()) << 9;
            int length = Math.floorMod(in.getInt(), 1 << 16);
            requests[i] = new Request(c, flags, offset, length);
            r.register(requests[i]);
        }
        drive(r, in.slice(), 7);
        for (Request q : requests) {
            for (int i = 0; i < GUARD; i++) {
                if (q.backing[i] != GUARD_BYTE || q.backing[q.backing.length - 1 - i] != GUARD_BYTE) {
                    fail("write outside the request buffer of " + q.command + " at guard byte " + i);
                }
            }
        }
    }

    /** Feeds the stream in small pieces, as a socket would. */
    static void drive(ReplyReassembler<Request> r, ByteBuffer stream, int piece) {
        ByteBuffer acc = ByteBuffer.allocate(stream.remaining() + 64).flip();
        for (int steps = 0; steps < 1_000_000; steps++) {
            ReplyReassembler.Step s = r.next(acc);
            switch (s) {
                case NEED_MORE, DATA -> {
                    if (s == ReplyReassembler.Step.NEED_MORE) {
                        assertTrue(r.bytesNeeded() > acc.remaining() || r.bytesNeeded() == 1,
                                "NEED_MORE with enough bytes buffered");
                    }
                    if (s == ReplyReassembler.Step.DATA) {
                        Request q = r.dataAttachment();
                        assertRange(q, r.dataOffset(), r.dataLength());
                        if (acc.hasRemaining()) {
                            r.copyData(acc, q.buffer);
                            continue;
                        }
                    }
                    if (!stream.hasRemaining()) {
                        return;
                    }
                    acc.compact();
                    int n = Math.min(piece, stream.remaining());
                    acc.put(acc.position(), stream, stream.position(), n);
                    acc.position(acc.position() + n);
                    stream.position(stream.position() + n);
                    acc.flip();
                }
                case ZEROES -> {
                    Request q = r.dataAttachment();
                    assertRange(q, r.dataOffset(), r.dataLength());
                    for (long i = 0; i < r.dataLength(); i++) {
                        q.buffer.put((int) (r.dataOffset() + i), (byte) 0);
                    }
                }
                case EXTENT -> assertTrue(r.extentLength() != 0);
                case COMPLETED -> assertNotNull(r.completed().request());
                case VIOLATION -> {
                    assertNotNull(r.violation().message());
                    assertEquals(ReplyReassembler.Step.VIOLATION, r.next(acc));
                    r.drainInFlight(q -> { });
                    assertEquals(0, r.inFlight());
                    return;
                }
            }
        }
        fail("reassembler did not make progress");
    }

    static void assertRange(Request q, long offset, long length) {
        assertTrue(offset >= 0 && length >= 0 && offset + length <= q.length,
                "range [" + offset + ", +" + length + ") outside request of " + q.length);
    }
}
