package io.nbdgate.protocol.wire;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.assertFalse;

import io.nbdgate.protocol.Command;
import io.nbdgate.protocol.CommandFlag;
import io.nbdgate.protocol.NbdError;
import io.nbdgate.protocol.NbdMagic;
import io.nbdgate.protocol.ProtocolViolation;
import io.nbdgate.protocol.ReplyType;
import io.nbdgate.protocol.TransmissionMode;
import io.nbdgate.protocol.wire.ReplyDriver.Target;
import java.nio.ByteBuffer;
import java.util.Arrays;
import java.util.List;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import org.junit.jupiter.api.Test;

class ReplyReassemblerTest {

    private static final TransmissionMode SIMPLE = TransmissionMode.SIMPLE;
    private static final TransmissionMode STRUCTURED = TransmissionMode.STRUCTURED;
    private static final TransmissionMode EXTENDED = TransmissionMode.EXTENDED;

    private final ByteBuffer out = ByteBuffer.allocate(1 << 16);

    private byte[] stream() {
        ByteBuffer b = out.duplicate().flip();
        byte[] a = new byte[b.remaining()];
        b.get(a);
        return a;
    }

    private static byte[] pattern(int n, int seed) {
        byte[] b = new byte[n];
        for (int i = 0; i < n; i++) {
            b[i] = (byte) (i * 31 + seed);
        }
        return b;
    }

    @ParameterizedTest
    @ValueSource(ints = {1, 3, 7, 64, 100000})
    void simpleReadReplyDeliversDataIntoTheRequestBuffer(int piece) {
        var r = new ReplyReassembler<Target>(SIMPLE, 4);
        Target t = new Target("read", 512, (byte) 0x55);
        long cookie = ReplyDriver.register(r, Command.READ, 0, 4096, 512, t);
        byte[] data = pattern(512, 1);
        ReplyCodec.simpleReply(out, 0, cookie);
        out.put(data);

        var d = new ReplyDriver().run(r, stream(), piece);

        assertNull(d.violation);
        assertEquals(List.of(new ReplyDriver.Completion("read", null, null, -1)), d.completions);
        assertArrayEquals(data, t.bytes());
        assertEquals(0, r.inFlight());
    }

    @Test
    void simpleErrorReplyCarriesErrnoAndNoPayload() {
        var r = new ReplyReassembler<Target>(SIMPLE, 4);
        long read = ReplyDriver.register(r, Command.READ, 0, 0, 512, new Target("read", 512, (byte) 0));
        long write = ReplyDriver.register(r, Command.WRITE, 0, 0, 512, new Target("write", 0, (byte) 0));
        ReplyCodec.simpleReply(out, NbdError.EIO.code(), read);
        ReplyCodec.simpleReply(out, 0, write);

        var d = new ReplyDriver().run(r, stream(), 5);

        assertNull(d.violation);
        assertEquals(NbdError.EIO, d.completions.get(0).error());
        assertEquals("write", d.completions.get(1).name());
        assertNull(d.completions.get(1).error());
    }

    @ParameterizedTest
    @ValueSource(ints = {1, 13, 100000})
    void structuredReadReassemblesOutOfOrderChunksAndHoles(int piece) {
        var r = new ReplyReassembler<Target>(STRUCTURED, 4);
        Target t = new Target("read", 3000, (byte) 0x7f);
        long c = ReplyDriver.register(r, Command.READ, 0, 10_000, 3000, t);
        byte[] tail = pattern(1000, 2);
        byte[] head = pattern(1000, 3);
        ReplyCodec.offsetDataHeader(out, STRUCTURED, 0, c, 10_000, 12_000, 1000);
        out.put(tail);
        ReplyCodec.offsetHole(out, STRUCTURED, 0, c, 10_000, 11_000, 1000);
        ReplyCodec.offsetDataHeader(out, STRUCTURED, 0, c, 10_000, 10_000, 1000);
        out.put(head);
        ReplyCodec.none(out, STRUCTURED, c, 10_000);

        var d = new ReplyDriver().run(r, stream(), piece);

        assertNull(d.violation);
        assertEquals(1, d.completions.size());
        assertNull(d.completions.get(0).error());
        assertArrayEquals(head, Arrays.copyOfRange(t.bytes(), 0, 1000));
        assertArrayEquals(new byte[1000], Arrays.copyOfRange(t.bytes(), 1000, 2000));
        assertArrayEquals(tail, Arrays.copyOfRange(t.bytes(), 2000, 3000));
    }

    @Test
    void interleavedRepliesCompleteOutOfOrder() {
        var r = new ReplyReassembler<Target>(STRUCTURED, 4);
        Target a = new Target("a", 100, (byte) 1);
        Target b = new Target("b", 100, (byte) 1);
        long ca = ReplyDriver.register(r, Command.READ, 0, 0, 100, a);
        long cb = ReplyDriver.register(r, Command.READ, 0, 100, 100, b);
        long cf = ReplyDriver.register(r, Command.FLUSH, 0, 0, 0, new Target("flush", 0, (byte) 0));
        assertTrue(ca != cb && cb != cf && ca != cf);
        ReplyCodec.offsetDataHeader(out, STRUCTURED, 0, ca, 0, 0, 50);
        out.put(pattern(50, 9));
        ReplyCodec.offsetDataHeader(out, STRUCTURED, ReplyType.FLAG_DONE, cb, 100, 100, 100);
        out.put(pattern(100, 8));
        ReplyCodec.simpleReply(out, 0, cf);
        ReplyCodec.offsetDataHeader(out, STRUCTURED, ReplyType.FLAG_DONE, ca, 0, 50, 50);
        out.put(pattern(50, 7));

        var d = new ReplyDriver().run(r, stream(), 11);

        assertNull(d.violation);
        assertEquals(List.of("b", "flush", "a"), d.completions.stream().map(ReplyDriver.Completion::name).toList());
        assertArrayEquals(pattern(100, 8), b.bytes());
        assertArrayEquals(pattern(50, 9), Arrays.copyOfRange(a.bytes(), 0, 50));
        assertArrayEquals(pattern(50, 7), Arrays.copyOfRange(a.bytes(), 50, 100));
    }

    @Test
    void errorChunkReportsErrnoAndMessage() {
        var r = new ReplyReassembler<Target>(STRUCTURED, 4);
        long c = ReplyDriver.register(r, Command.WRITE, 0, 0, 512, new Target("w", 0, (byte) 0));
        ReplyCodec.error(out, STRUCTURED, c, 0, NbdError.EPERM, "read-only export");

        var d = new ReplyDriver().run(r, stream(), 4);

        assertEquals(List.of(new ReplyDriver.Completion("w", NbdError.EPERM, "read-only export", -1)), d.completions);
    }

    @Test
    void errorOffsetChunkReportsWhereItFailedAndReadMayStayPartial() {
        var r = new ReplyReassembler<Target>(STRUCTURED, 4);
        Target t = new Target("r", 1024, (byte) 0);
        long c = ReplyDriver.register(r, Command.READ, 0, 4096, 1024, t);
        ReplyCodec.offsetDataHeader(out, STRUCTURED, 0, c, 4096, 4096, 512);
        out.put(pattern(512, 4));
        ReplyCodec.errorOffset(out, STRUCTURED, ReplyType.FLAG_DONE, c, 4096, NbdError.EIO, "bad sector", 4608);

        var d = new ReplyDriver().run(r, stream(), 9);

        assertNull(d.violation);
        assertEquals(List.of(new ReplyDriver.Completion("r", NbdError.EIO, "bad sector", 4608)), d.completions);
    }

    @Test
    void unknownErrorChunkTypeFailsTheRequestButKeepsTheConnection() {
        var r = new ReplyReassembler<Target>(STRUCTURED, 4);
        long c1 = ReplyDriver.register(r, Command.TRIM, 0, 0, 512, new Target("t", 0, (byte) 0));
        long c2 = ReplyDriver.register(r, Command.FLUSH, 0, 0, 0, new Target("f", 0, (byte) 0));
        ReplyCodec.chunkHeader(out, STRUCTURED, ReplyType.FLAG_DONE, 0x8123, c1, 0, 6 + 2 + 10);
        out.putInt(NbdError.ENOSPC.code()).putShort((short) 2).put("no".getBytes()).put(new byte[10]);
        ReplyCodec.none(out, STRUCTURED, c2, 0);

        var d = new ReplyDriver().run(r, stream(), 3);

        assertNull(d.violation);
        assertEquals(List.of(new ReplyDriver.Completion("t", NbdError.ENOSPC, "no", -1),
                new ReplyDriver.Completion("f", null, null, -1)), d.completions);
    }

    @Test
    void unknownErrorValueIsTreatedAsEinval() {
        var r = new ReplyReassembler<Target>(SIMPLE, 4);
        long c = ReplyDriver.register(r, Command.FLUSH, 0, 0, 0, new Target("f", 0, (byte) 0));
        ReplyCodec.simpleReply(out, 4242, c);

        var d = new ReplyDriver().run(r, stream(), 16);

        assertEquals(NbdError.EINVAL, d.completions.get(0).error());
    }

    @Test
    void eshutdownAsksForSoftDisconnect() {
        var r = new ReplyReassembler<Target>(STRUCTURED, 4);
        long c = ReplyDriver.register(r, Command.WRITE, 0, 0, 512, new Target("w", 0, (byte) 0));
        ReplyCodec.error(out, STRUCTURED, c, 0, NbdError.ESHUTDOWN, "");
        assertFalse(r.shutdownRequested());

        var d = new ReplyDriver().run(r, stream(), 64);

        assertEquals(NbdError.ESHUTDOWN, d.completions.get(0).error());
        assertTrue(r.shutdownRequested());
    }

    @Test
    void extendedHeadersReadAndBlockStatus() {
        var r = new ReplyReassembler<Target>(EXTENDED, 4);
        Target t = new Target("r", 4096, (byte) 9);
        long cr = ReplyDriver.register(r, Command.READ, 0, 1L << 40, 4096, t);
        long cs = ReplyDriver.register(r, Command.BLOCK_STATUS, 0, 0, 1L << 33, new Target("bs", 0, (byte) 0));
        ReplyCodec.offsetDataHeader(out, EXTENDED, 0, cr, 1L << 40, (1L << 40) + 2048, 2048);
        out.put(pattern(2048, 5));
        ReplyCodec.offsetHole(out, EXTENDED, ReplyType.FLAG_DONE, cr, 1L << 40, 1L << 40, 2048);
        ReplyCodec.blockStatus(out, EXTENDED, ReplyType.FLAG_DONE, cs, 0, 1, new long[] {1L << 32, 4096},
                new long[] {3, 0});

        var d = new ReplyDriver().run(r, stream(), 7);

        assertNull(d.violation);
        assertEquals(2, d.completions.size());
        assertArrayEquals(new byte[2048], Arrays.copyOfRange(t.bytes(), 0, 2048));
        assertArrayEquals(pattern(2048, 5), Arrays.copyOfRange(t.bytes(), 2048, 4096));
        assertEquals(List.of(new ReplyDriver.Extent(1, 1L << 32, 3), new ReplyDriver.Extent(1, 4096, 0)), d.extents);
    }

    @Test
    void structuredBlockStatus() {
        var r = new ReplyReassembler<Target>(STRUCTURED, 4);
        long c = ReplyDriver.register(r, Command.BLOCK_STATUS, 0, 0, 8192, new Target("bs", 0, (byte) 0));
        ReplyCodec.blockStatus(out, STRUCTURED, ReplyType.FLAG_DONE, c, 0, 7, new long[] {4096, 4096}, new long[] {0, 3});

        var d = new ReplyDriver().run(r, stream(), 5);

        assertNull(d.violation);
        assertEquals(List.of(new ReplyDriver.Extent(7, 4096, 0), new ReplyDriver.Extent(7, 4096, 3)), d.extents);
    }

    @Test
    void zeroCopyCallerReceivesPayloadOutsideTheHeaderBuffer() {
        var r = new ReplyReassembler<Target>(STRUCTURED, 4);
        Target t = new Target("r", 1024, (byte) 0);
        long c = ReplyDriver.register(r, Command.READ, 0, 0, 1024, t);
        ByteBuffer header = ByteBuffer.allocate(64);
        ReplyCodec.offsetDataHeader(header, STRUCTURED, ReplyType.FLAG_DONE, c, 0, 256, 768);
        header.flip();
        ByteBuffer partial = ByteBuffer.allocate(64);

        // Receive exactly what the reassembler asks for: never a payload byte into the header buffer.
        partial.limit(0);
        assertEquals(ReplyReassembler.Step.NEED_MORE, r.next(partial));
        assertEquals(4, r.bytesNeeded());
        partial.limit(4).put(0, header, 0, 4);
        assertEquals(ReplyReassembler.Step.NEED_MORE, r.next(partial));
        assertEquals(20, r.bytesNeeded());
        partial.limit(20).put(0, header, 0, 20);
        assertEquals(ReplyReassembler.Step.NEED_MORE, r.next(partial));
        assertEquals(8, r.bytesNeeded());
        partial.clear().put(header.slice(20, 8)).flip();
        assertEquals(ReplyReassembler.Step.DATA, r.next(partial));
        assertEquals(256, r.dataOffset());
        assertEquals(768, r.dataLength());
        r.dataReceived(500);
        assertEquals(ReplyReassembler.Step.DATA, r.next(partial));
        assertEquals(756, r.dataOffset());
        assertEquals(268, r.dataLength());
        r.dataReceived(268);
        // the first 256 bytes are uncovered: without an error chunk that is a protocol violation
        assertEquals(ReplyReassembler.Step.VIOLATION, r.next(partial));
        assertInstanceOf(ProtocolViolation.UnexpectedReply.class, r.violation());
    }

    @Test
    void lateReplyToAReusedSlotIsAnUnknownCookie() {
        var r = new ReplyReassembler<Target>(SIMPLE, 1);
        long first = ReplyDriver.register(r, Command.FLUSH, 0, 0, 0, new Target("1", 0, (byte) 0));
        ReplyCodec.simpleReply(out, 0, first);
        assertEquals(1, new ReplyDriver().run(r, stream(), 16).completions.size());
        long second = ReplyDriver.register(r, Command.FLUSH, 0, 0, 0, new Target("2", 0, (byte) 0));
        assertTrue(first != second);

        var d = new ReplyDriver().run(r, stream(), 16); // the same bytes again: the old cookie

        assertEquals(new ProtocolViolation.UnknownCookie(first), d.violation);
    }

    @Test
    void drainHandsBackEveryRequestInFlight() {
        var r = new ReplyReassembler<Target>(SIMPLE, 4);
        ReplyDriver.register(r, Command.FLUSH, 0, 0, 0, new Target("1", 0, (byte) 0));
        ReplyDriver.register(r, Command.FLUSH, 0, 0, 0, new Target("2", 0, (byte) 0));
        var names = new java.util.ArrayList<String>();
        r.drainInFlight(t -> names.add(t.name));
        assertEquals(List.of("1", "2"), names.stream().sorted().toList());
        assertEquals(0, r.inFlight());
        assertTrue(r.hasCapacity());
    }

    // ---- violations: each ends the connection with a typed value ----

    /**
     * The zero-copy connection receives headers only as far as safeReadAhead / boundaryReadAhead allow:
     * over random mixed streams in every mode, no data byte may ever land in the header buffer, and
     * every reply must still decode exactly.
     */
    @ParameterizedTest
    @ValueSource(strings = {"SIMPLE", "STRUCTURED", "EXTENDED"})
    void readingAheadNeverStagesRequestData(String modeName) {
        TransmissionMode mode = TransmissionMode.valueOf(modeName);
        for (int seed = 0; seed < 200; seed++) {
            java.util.Random random = new java.util.Random(seed);
            var r = new ReplyReassembler<Target>(mode, 64);
            ByteBuffer stream = ByteBuffer.allocate(1 << 20);
            List<Target> reads = new java.util.ArrayList<>();
            List<byte[]> expected = new java.util.ArrayList<>();
            int requests = 1 + random.nextInt(40);
            for (int i = 0; i < requests; i++) {
                int kind = random.nextInt(3);
                if (kind == 0) {
                    int len = 1 + random.nextInt(3000);
                    Target t = new Target("r" + i, len, (byte) 0x77);
                    long cookie = ReplyDriver.register(r, Command.READ, 0, 4096L * i, len, t);
                    byte[] data = pattern(len, seed + i);
                    reads.add(t);
                    expected.add(data);
                    if (mode == SIMPLE) {
                        ReplyCodec.simpleReply(stream, 0, cookie);
                        stream.put(data);
                    } else {
                        // One to three chunks: data, a hole (zeroes), data again; the last one says DONE.
                        int split = random.nextInt(len + 1);
                        int hole = split < len ? random.nextInt(len - split + 1) : 0;
                        if (split > 0) {
                            ReplyCodec.offsetDataHeader(stream, mode, 0, cookie, 4096L * i, 4096L * i, split);
                            stream.put(data, 0, split);
                        }
                        if (hole > 0) {
                            ReplyCodec.offsetHole(stream, mode, 0, cookie, 4096L * i, 4096L * i + split, hole);
                            Arrays.fill(data, split, split + hole, (byte) 0);
                        }
                        int rest = len - split - hole;
                        if (rest > 0) {
                            ReplyCodec.offsetDataHeader(stream, mode, 0, cookie, 4096L * i, 4096L * i + split + hole,
                                    rest);
                            stream.put(data, split + hole, rest);
                        }
                        ReplyCodec.none(stream, mode, cookie, 4096L * i);
                    }
                } else {
                    long cookie = ReplyDriver.register(r, kind == 1 ? Command.WRITE : Command.FLUSH, 0, kind == 1 ? 512L * i : 0,
                            kind == 1 ? 512 : 0, new Target("w" + i, 0, (byte) 0));
                    if (mode == EXTENDED || (mode == STRUCTURED && random.nextBoolean())) {
                        if (random.nextInt(4) == 0) {
                            ReplyCodec.error(stream, mode, cookie, kind == 1 ? 512L * i : 0, NbdError.EIO,
                                    "disk on fire " + i);
                        } else {
                            ReplyCodec.none(stream, mode, cookie, kind == 1 ? 512L * i : 0);
                        }
                    } else {
                        ReplyCodec.simpleReply(stream, random.nextInt(4) == 0 ? NbdError.EIO.code() : 0, cookie);
                    }
                }
            }
            byte[] bytes = Arrays.copyOf(stream.array(), stream.position());

            var d = new ReplyDriver().runReadingAhead(r, bytes, random);

            assertNull(d.violation, "seed " + seed);
            assertEquals(0, d.staged, "seed " + seed + ": data bytes were read into the header buffer");
            assertEquals(requests, d.completions.size(), "seed " + seed);
            for (int i = 0; i < reads.size(); i++) {
                assertArrayEquals(expected.get(i), reads.get(i).bytes(), "seed " + seed + " read " + i);
            }
        }
    }

    @Test
    void readAheadAtABoundaryCoversHeaderAndDataOffsetButNotData() {
        assertEquals(16, new ReplyReassembler<Target>(SIMPLE, 1).safeReadAhead());
        assertEquals(28, new ReplyReassembler<Target>(STRUCTURED, 1).safeReadAhead());
        assertEquals(40, new ReplyReassembler<Target>(EXTENDED, 1).safeReadAhead());
    }

    private ProtocolViolation violationOf(ReplyReassembler<Target> r) {
        var d = new ReplyDriver().run(r, stream(), 3);
        assertTrue(d.completions.isEmpty(), "no request may complete: " + d.completions);
        // a dead reassembler stays dead
        assertEquals(ReplyReassembler.Step.VIOLATION, r.next(ByteBuffer.allocate(64)));
        return d.violation;
    }

    @Test
    void badMagicIsAViolation() {
        var r = new ReplyReassembler<Target>(STRUCTURED, 4);
        ReplyDriver.register(r, Command.FLUSH, 0, 0, 0, new Target("f", 0, (byte) 0));
        out.putInt(0x12345678).putLong(0).putInt(0).putInt(0);
        assertEquals(new ProtocolViolation.BadMagic("reply header", NbdMagic.STRUCTURED_REPLY, 0x12345678), violationOf(r));
    }

    @Test
    void unknownCookieIsAViolation() {
        var r = new ReplyReassembler<Target>(STRUCTURED, 4);
        ReplyDriver.register(r, Command.FLUSH, 0, 0, 0, new Target("f", 0, (byte) 0));
        ReplyCodec.none(out, STRUCTURED, 0xdead_0000_0000L, 0);
        assertInstanceOf(ProtocolViolation.UnknownCookie.class, violationOf(r));
    }

    @Test
    void dataChunkOutsideItsRequestIsAViolationAndNothingIsWritten() {
        var r = new ReplyReassembler<Target>(STRUCTURED, 4);
        Target t = new Target("r", 512, (byte) 0x11);
        long c = ReplyDriver.register(r, Command.READ, 0, 4096, 512, t);
        ReplyCodec.offsetDataHeader(out, STRUCTURED, ReplyType.FLAG_DONE, c, 4096, 4096 + 256, 512);
        out.put(pattern(512, 1));
        assertInstanceOf(ProtocolViolation.ChunkOutsideRequest.class, violationOf(r));
        byte[] untouched = new byte[512];
        Arrays.fill(untouched, (byte) 0x11);
        assertArrayEquals(untouched, t.bytes());
    }

    @Test
    void holeBeforeTheRequestIsAViolation() {
        var r = new ReplyReassembler<Target>(STRUCTURED, 4);
        long c = ReplyDriver.register(r, Command.READ, 0, 4096, 512, new Target("r", 512, (byte) 0));
        ReplyCodec.offsetHole(out, STRUCTURED, ReplyType.FLAG_DONE, c, 4096, 4000, 512);
        assertInstanceOf(ProtocolViolation.ChunkOutsideRequest.class, violationOf(r));
    }

    @Test
    void overlappingChunksAreAViolation() {
        var r = new ReplyReassembler<Target>(STRUCTURED, 4);
        long c = ReplyDriver.register(r, Command.READ, 0, 0, 1024, new Target("r", 1024, (byte) 0));
        ReplyCodec.offsetHole(out, STRUCTURED, 0, c, 0, 0, 600);
        ReplyCodec.offsetDataHeader(out, STRUCTURED, ReplyType.FLAG_DONE, c, 0, 512, 512);
        out.put(new byte[512]);
        assertEquals(new ProtocolViolation.OverlappingChunk(c, 512, 512), violationOf(r));
    }

    @Test
    void unknownChunkTypeWithoutErrorBitIsAViolation() {
        var r = new ReplyReassembler<Target>(STRUCTURED, 4);
        long c = ReplyDriver.register(r, Command.FLUSH, 0, 0, 0, new Target("f", 0, (byte) 0));
        ReplyCodec.chunkHeader(out, STRUCTURED, ReplyType.FLAG_DONE, 3, c, 0, 0);
        assertEquals(new ProtocolViolation.UnknownChunkType(3), violationOf(r));
    }

    @Test
    void oversizeErrorChunkIsAViolation() {
        var r = new ReplyReassembler<Target>(STRUCTURED, 4);
        long c = ReplyDriver.register(r, Command.FLUSH, 0, 0, 0, new Target("f", 0, (byte) 0));
        ReplyCodec.chunkHeader(out, STRUCTURED, ReplyType.FLAG_DONE, ReplyType.ERROR, c, 0, 0x7fff_0000L);
        assertInstanceOf(ProtocolViolation.OversizeLength.class, violationOf(r));
    }

    @Test
    void oversizeDataChunkIsRejectedBeforeAnyPayload() {
        var r = new ReplyReassembler<Target>(EXTENDED, 4);
        long c = ReplyDriver.register(r, Command.READ, 0, 0, 4096, new Target("r", 4096, (byte) 0));
        ReplyCodec.chunkHeader(out, EXTENDED, ReplyType.FLAG_DONE, ReplyType.OFFSET_DATA, c, 0, 1L << 40);
        assertInstanceOf(ProtocolViolation.OversizeLength.class, violationOf(r));
    }

    @Test
    void errorMessageLongerThanItsChunkIsAViolation() {
        var r = new ReplyReassembler<Target>(STRUCTURED, 4);
        long c = ReplyDriver.register(r, Command.FLUSH, 0, 0, 0, new Target("f", 0, (byte) 0));
        ReplyCodec.chunkHeader(out, STRUCTURED, ReplyType.FLAG_DONE, ReplyType.ERROR, c, 0, 8);
        out.putInt(5).putShort((short) 100).putShort((short) 0);
        assertInstanceOf(ProtocolViolation.MalformedMessage.class, violationOf(r));
    }

    @Test
    void simpleReplyToReadAfterStructuredNegotiationIsAViolation() {
        var r = new ReplyReassembler<Target>(STRUCTURED, 4);
        long c = ReplyDriver.register(r, Command.READ, 0, 0, 16, new Target("r", 16, (byte) 0));
        ReplyCodec.simpleReply(out, 0, c);
        out.put(new byte[16]);
        assertInstanceOf(ProtocolViolation.UnexpectedReply.class, violationOf(r));
    }

    @Test
    void simpleErrorReplyToReadAfterStructuredNegotiationIsTolerated() {
        var r = new ReplyReassembler<Target>(STRUCTURED, 4);
        long c = ReplyDriver.register(r, Command.READ, 0, 0, 16, new Target("r", 16, (byte) 0));
        ReplyCodec.simpleReply(out, NbdError.EINVAL.code(), c);
        var d = new ReplyDriver().run(r, stream(), 16);
        assertNull(d.violation);
        assertEquals(NbdError.EINVAL, d.completions.get(0).error());
    }

    @Test
    void structuredChunkWithoutNegotiationIsAViolation() {
        var r = new ReplyReassembler<Target>(SIMPLE, 4);
        long c = ReplyDriver.register(r, Command.FLUSH, 0, 0, 0, new Target("f", 0, (byte) 0));
        ReplyCodec.none(out, STRUCTURED, c, 0);
        assertInstanceOf(ProtocolViolation.UnexpectedReply.class, violationOf(r));
    }

    @Test
    void simpleReplyInExtendedModeIsBadMagic() {
        var r = new ReplyReassembler<Target>(EXTENDED, 4);
        long c = ReplyDriver.register(r, Command.FLUSH, 0, 0, 0, new Target("f", 0, (byte) 0));
        ReplyCodec.simpleReply(out, 0, c);
        out.put(new byte[16]);
        assertInstanceOf(ProtocolViolation.BadMagic.class, violationOf(r));
    }

    @Test
    void extendedReplyWithAnotherOffsetIsAViolation() {
        var r = new ReplyReassembler<Target>(EXTENDED, 4);
        long c = ReplyDriver.register(r, Command.FLUSH, 0, 4096, 0, new Target("f", 0, (byte) 0));
        ReplyCodec.none(out, EXTENDED, c, 0);
        assertInstanceOf(ProtocolViolation.MalformedMessage.class, violationOf(r));
    }

    @Test
    void readDoneWithoutAllDataIsAViolation() {
        var r = new ReplyReassembler<Target>(STRUCTURED, 4);
        long c = ReplyDriver.register(r, Command.READ, 0, 0, 1024, new Target("r", 1024, (byte) 0));
        ReplyCodec.offsetHole(out, STRUCTURED, 0, c, 0, 0, 512);
        ReplyCodec.none(out, STRUCTURED, c, 0);
        assertInstanceOf(ProtocolViolation.UnexpectedReply.class, violationOf(r));
    }

    @Test
    void noneChunkWithoutDoneIsAViolation() {
        var r = new ReplyReassembler<Target>(STRUCTURED, 4);
        long c = ReplyDriver.register(r, Command.FLUSH, 0, 0, 0, new Target("f", 0, (byte) 0));
        ReplyCodec.chunkHeader(out, STRUCTURED, 0, ReplyType.NONE, c, 0, 0);
        assertInstanceOf(ProtocolViolation.MalformedMessage.class, violationOf(r));
    }

    @Test
    void dataChunkForAWriteIsAViolation() {
        var r = new ReplyReassembler<Target>(STRUCTURED, 4);
        long c = ReplyDriver.register(r, Command.WRITE, 0, 0, 512, new Target("w", 512, (byte) 0));
        ReplyCodec.offsetDataHeader(out, STRUCTURED, ReplyType.FLAG_DONE, c, 0, 0, 512);
        out.put(new byte[512]);
        assertInstanceOf(ProtocolViolation.UnexpectedReply.class, violationOf(r));
    }

    @Test
    void secondContentChunkWithDontFragmentIsAViolation() {
        var r = new ReplyReassembler<Target>(STRUCTURED, 4);
        long c = ReplyDriver.register(r, Command.READ, CommandFlag.DF, 0, 1024, new Target("r", 1024, (byte) 0));
        ReplyCodec.offsetHole(out, STRUCTURED, 0, c, 0, 0, 512);
        ReplyCodec.offsetHole(out, STRUCTURED, ReplyType.FLAG_DONE, c, 0, 512, 512);
        assertInstanceOf(ProtocolViolation.UnexpectedReply.class, violationOf(r));
    }

    @Test
    void zeroSizedHoleIsAViolation() {
        var r = new ReplyReassembler<Target>(STRUCTURED, 4);
        long c = ReplyDriver.register(r, Command.READ, 0, 0, 1024, new Target("r", 1024, (byte) 0));
        ReplyCodec.chunkHeader(out, STRUCTURED, ReplyType.FLAG_DONE, ReplyType.OFFSET_HOLE, c, 0, 12);
        out.putLong(0).putInt(0);
        assertInstanceOf(ProtocolViolation.MalformedMessage.class, violationOf(r));
    }

    @Test
    void blockStatusExtCountMismatchIsAViolation() {
        var r = new ReplyReassembler<Target>(EXTENDED, 4);
        long c = ReplyDriver.register(r, Command.BLOCK_STATUS, 0, 0, 4096, new Target("bs", 0, (byte) 0));
        ReplyCodec.chunkHeader(out, EXTENDED, ReplyType.FLAG_DONE, ReplyType.BLOCK_STATUS_EXT, c, 0, 8 + 16);
        out.putInt(1).putInt(2).putLong(4096).putLong(0);
        assertInstanceOf(ProtocolViolation.MalformedMessage.class, violationOf(r));
    }
}
