package io.nbdgate.protocol.wire;

import io.nbdgate.protocol.Command;
import io.nbdgate.protocol.CommandFlag;
import io.nbdgate.protocol.NbdError;
import io.nbdgate.protocol.NbdMagic;
import io.nbdgate.protocol.NbdSizes;
import io.nbdgate.protocol.ProtocolViolation;
import io.nbdgate.protocol.ReplyType;
import io.nbdgate.protocol.TransmissionMode;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.util.function.Consumer;

/**
 * Client side of the transmission phase: owns the cookies of the requests in flight on one connection
 * and turns the server's byte stream into steps. It never copies read data itself: a {@link Step#DATA}
 * step says which request and which range of its buffer the next {@link #dataLength()} bytes of the
 * stream belong to, and the caller receives them there (a socket read, or an io_uring RECV into a
 * registered buffer) and reports them with {@link #dataReceived(long)}.
 *
 * <p>Headers are read from a caller-provided big-endian buffer. {@link Step#NEED_MORE} consumes nothing
 * and says how many bytes must be readable before the next call can progress, so a caller can receive
 * exactly that many bytes and never read into a payload by accident.
 *
 * <p>Every malformed input ends in {@link Step#VIOLATION}; after that the reassembler only answers
 * VIOLATION and the connection must be dropped. Not thread-safe: one connection, one thread.
 *
 * @param <T> what the caller attaches to a request (a promise, a ublk tag, ...)
 */
public final class ReplyReassembler<T> {

    /** What the caller must do next. */
    public enum Step {
        /** Make {@link #bytesNeeded()} bytes readable in the input, then call {@link #next} again. */
        NEED_MORE,
        /** The next {@link #dataLength()} stream bytes belong at {@link #dataOffset()} of {@link #dataAttachment()}'s buffer. */
        DATA,
        /** The range {@link #dataOffset()}, {@link #dataLength()} of {@link #dataAttachment()}'s buffer reads as zeroes. */
        ZEROES,
        /** One block status descriptor: {@link #extentContextId()}, {@link #extentLength()}, {@link #extentFlags()}. */
        EXTENT,
        /** A request finished: {@link #completedAttachment()}, {@link #completedError()}. */
        COMPLETED,
        /** The stream broke the protocol: {@link #violation()}. The connection must be dropped. */
        VIOLATION
    }

    // Largest error chunk we accept: the spec caps messages at 4096 bytes; fixed fields are small.
    private static final long MAX_ERROR_CHUNK = NbdSizes.MAX_STRING + 64L;
    // Block status replies SHOULD hold at most 2^20 descriptors; they are streamed, this only bounds a lie.
    private static final long MAX_STATUS_CHUNK = 8 + 16L * (1 << 20);

    private enum State { HEADER, SIMPLE_DATA, CHUNK_DATA, OFFSET_DATA_PREFIX, HOLE, STATUS_PREFIX, EXTENTS,
        ERROR_HEAD, ERROR_MESSAGE, ERROR_OFFSET, SKIP, DEAD }

    private final TransmissionMode mode;
    private final InFlightRequests<T> requests;

    private State state = State.HEADER;
    private int needed;
    private ProtocolViolation violation;
    private boolean shutdownRequested;

    // The chunk being decoded.
    private InFlightRequests.Slot<T> current;
    private int chunkFlags;
    private int chunkType;
    private long chunkRemaining;
    private int errorCode;
    private int messageLength;
    private long dataOffset;
    private long dataRemaining;
    private long holeLength;
    private boolean holeStep;
    private int contextId;
    private long extentLength;
    private long extentFlags;

    // The request just completed.
    private T completedAttachment;
    private NbdError completedError;
    private String completedMessage;
    private long completedErrorOffset;
    private Command completedCommand;

    public ReplyReassembler(TransmissionMode mode, int maxInFlight) {
        this.mode = mode;
        this.requests = new InFlightRequests<>(maxInFlight);
    }

    public TransmissionMode mode() {
        return mode;
    }

    public boolean hasCapacity() {
        return requests.hasCapacity();
    }

    public int inFlight() {
        return requests.inFlight();
    }

    /**
     * Records a request about to be sent and returns its cookie, unique among the requests in flight
     * (slot index in the low 32 bits, a generation in the high 32 so a late reply to a reused slot is
     * an unknown cookie).
     */
    public long register(Command command, int flags, long offset, long length, T attachment) {
        return requests.register(command, flags, offset, length, attachment);
    }

    /**
     * Takes a request back that was registered but never sent (e.g. the write failed). Returns its
     * attachment, or null if the cookie is not in flight.
     */
    public T cancel(long cookie) {
        InFlightRequests.Slot<T> s = requests.lookup(cookie);
        if (s == null || s == current) {
            return null;
        }
        T a = s.attachment;
        requests.release(s);
        return a;
    }

    /** Hands every request still in flight to {@code sink} and forgets them (connection lost; retry or fail them). */
    public void drainInFlight(Consumer<T> sink) {
        requests.drain(sink);
        current = null;
    }

    /** True once the server answered a request with ESHUTDOWN: the client must initiate a soft disconnect. */
    public boolean shutdownRequested() {
        return shutdownRequested;
    }

    public int bytesNeeded() {
        return needed;
    }

    /**
     * How many bytes, counted from the input's position, the caller may read into the input after
     * {@link Step#NEED_MORE} without ever taking a byte of request data: at least {@link #bytesNeeded()},
     * and more at a reply boundary, where the shortest way to data is a header plus an OFFSET_DATA offset.
     * Receiving this much (without waiting for all of it) gets a read reply's header in one receive while
     * its data stays in the socket for a receive straight into the request's buffer.
     */
    public int safeReadAhead() {
        return state == State.HEADER ? Math.max(needed, boundaryReadAhead()) : needed;
    }

    /**
     * {@link #safeReadAhead()} at a reply or chunk boundary, which is where the stream stands after a
     * {@link Step#DATA} range: a caller can post the receive of the next header before the data arrived.
     * Simple replies: only the 16-byte header is safe (data may follow it). Structured: 20-byte chunk
     * header + 8-byte offset; a shorter reply is followed by another header, and a simple reply carries
     * no data once structured replies are on. Extended: 32-byte header + 8-byte offset.
     */
    public int boundaryReadAhead() {
        return switch (mode) {
            case SIMPLE -> NbdSizes.SIMPLE_REPLY_HEADER;
            case STRUCTURED -> NbdSizes.STRUCTURED_REPLY_HEADER + 8;
            case EXTENDED -> NbdSizes.EXTENDED_REPLY_HEADER + 8;
        };
    }

    public ProtocolViolation violation() {
        return violation;
    }

    public T dataAttachment() {
        return current == null ? null : current.attachment;
    }

    /** Offset of the current data or hole range inside the request's buffer (0 = the request's first byte). */
    public long dataOffset() {
        return dataOffset;
    }

    /** Bytes still to receive for a DATA step, or the hole's size for a ZEROES step. */
    public long dataLength() {
        return holeStep ? holeLength : dataRemaining;
    }

    public int extentContextId() {
        return contextId;
    }

    public long extentLength() {
        return extentLength;
    }

    public long extentFlags() {
        return extentFlags;
    }

    public T completedAttachment() {
        return completedAttachment;
    }

    public Command completedCommand() {
        return completedCommand;
    }

    /** Null on success; otherwise the first error the server reported for the request. */
    public NbdError completedError() {
        return completedError;
    }

    /** The server's human-readable message for the error, or null. */
    public String completedMessage() {
        return completedMessage;
    }

    /** Offset of an ERROR_OFFSET chunk, or -1. */
    public long completedErrorOffset() {
        return completedErrorOffset;
    }

    /**
     * The caller received {@code n} data bytes of the current {@link Step#DATA} range straight into its buffer
     * (not through the input buffer of {@link #next}).
     */
    public void dataReceived(long n) {
        if ((state != State.SIMPLE_DATA && state != State.CHUNK_DATA) || n < 0 || n > dataRemaining) {
            throw new IllegalStateException("dataReceived(" + n + ") with " + dataRemaining + " expected in " + state);
        }
        dataOffset += n;
        dataRemaining -= n;
    }

    /**
     * Copy path: moves as much of the current DATA range as {@code in} holds into {@code requestBuffer}
     * (the buffer of {@link #dataAttachment()}, indexed from the request's first byte). Returns the count.
     * Writes only inside [0, request length) and never past the buffer's capacity.
     */
    public int copyData(ByteBuffer in, ByteBuffer requestBuffer) {
        if (state != State.SIMPLE_DATA && state != State.CHUNK_DATA) {
            return 0;
        }
        int n = (int) Math.min(in.remaining(), dataRemaining);
        if (dataOffset + n > requestBuffer.capacity()) {
            throw new IndexOutOfBoundsException("request buffer of " + requestBuffer.capacity()
                    + " bytes is smaller than the request");
        }
        requestBuffer.put((int) dataOffset, in, in.position(), n);
        in.position(in.position() + n);
        dataReceived(n);
        return n;
    }

    /** Advances over {@code in} until the caller has something to do. Consumes only header bytes. */
    public Step next(ByteBuffer in) {
        holeStep = false;
        while (true) {
            switch (state) {
                case DEAD:
                    return Step.VIOLATION;
                case HEADER: {
                    Step s = readHeader(in);
                    if (s != null) {
                        return s;
                    }
                    break;
                }
                case SIMPLE_DATA:
                    if (dataRemaining > 0) {
                        return Step.DATA;
                    }
                    return complete();
                case CHUNK_DATA:
                    if (dataRemaining > 0) {
                        return Step.DATA;
                    }
                    {
                        Step s = endChunk();
                        if (s != null) {
                            return s;
                        }
                    }
                    break;
                case OFFSET_DATA_PREFIX: {
                    if (!have(in, 8)) {
                        return Step.NEED_MORE;
                    }
                    long off = in.getLong();
                    long len = chunkRemaining - 8;
                    Step bad = claimRange(off, len);
                    if (bad != null) {
                        return bad;
                    }
                    chunkRemaining = 0;
                    state = State.CHUNK_DATA;
                    dataOffset = off - current.offset;
                    dataRemaining = len;
                    return Step.DATA;
                }
                case HOLE: {
                    if (!have(in, 12)) {
                        return Step.NEED_MORE;
                    }
                    long off = in.getLong();
                    long size = Integer.toUnsignedLong(in.getInt());
                    if (size == 0) {
                        return fail(new ProtocolViolation.MalformedMessage("OFFSET_HOLE chunk", "hole size is 0"));
                    }
                    Step bad = claimRange(off, size);
                    if (bad != null) {
                        return bad;
                    }
                    chunkRemaining = 0;
                    dataOffset = off - current.offset;
                    holeLength = size;
                    holeStep = true;
                    state = State.CHUNK_DATA;
                    dataRemaining = 0;
                    return Step.ZEROES;
                }
                case STATUS_PREFIX: {
                    boolean ext = chunkType == ReplyType.BLOCK_STATUS_EXT.code();
                    if (!have(in, ext ? 8 : 4)) {
                        return Step.NEED_MORE;
                    }
                    contextId = in.getInt();
                    chunkRemaining -= 4;
                    if (ext) {
                        long count = Integer.toUnsignedLong(in.getInt());
                        chunkRemaining -= 4;
                        if (count == 0 || count * 16 != chunkRemaining) {
                            return fail(new ProtocolViolation.MalformedMessage("BLOCK_STATUS_EXT chunk",
                                    "descriptor count " + count + " does not match length"));
                        }
                    }
                    current.contentChunks++;
                    state = State.EXTENTS;
                    break;
                }
                case EXTENTS: {
                    if (chunkRemaining == 0) {
                        Step s = endChunk();
                        if (s != null) {
                            return s;
                        }
                        break;
                    }
                    boolean ext = chunkType == ReplyType.BLOCK_STATUS_EXT.code();
                    if (!have(in, ext ? 16 : 8)) {
                        return Step.NEED_MORE;
                    }
                    if (ext) {
                        extentLength = in.getLong();
                        extentFlags = in.getLong();
                        chunkRemaining -= 16;
                    } else {
                        extentLength = Integer.toUnsignedLong(in.getInt());
                        extentFlags = Integer.toUnsignedLong(in.getInt());
                        chunkRemaining -= 8;
                    }
                    if (extentLength == 0) {
                        return fail(new ProtocolViolation.MalformedMessage("block status descriptor", "extent length 0"));
                    }
                    return Step.EXTENT;
                }
                case ERROR_HEAD: {
                    if (!have(in, 6)) {
                        return Step.NEED_MORE;
                    }
                    errorCode = in.getInt();
                    messageLength = Short.toUnsignedInt(in.getShort());
                    chunkRemaining -= 6;
                    long fixedTail = chunkType == ReplyType.ERROR_OFFSET.code() ? 8 : 0;
                    if (messageLength > chunkRemaining - fixedTail) {
                        return fail(new ProtocolViolation.MalformedMessage("error chunk",
                                "message length " + messageLength + " exceeds chunk length"));
                    }
                    if (messageLength > NbdSizes.MAX_STRING) {
                        return fail(new ProtocolViolation.OversizeLength("error message", messageLength, NbdSizes.MAX_STRING));
                    }
                    if (errorCode == 0) {
                        return fail(new ProtocolViolation.MalformedMessage("error chunk", "error value is 0"));
                    }
                    state = State.ERROR_MESSAGE;
                    break;
                }
                case ERROR_MESSAGE: {
                    if (!have(in, messageLength)) {
                        return Step.NEED_MORE;
                    }
                    String msg = null;
                    if (messageLength > 0) {
                        byte[] b = new byte[messageLength];
                        in.get(b);
                        msg = new String(b, StandardCharsets.UTF_8);
                    }
                    chunkRemaining -= messageLength;
                    recordError(NbdError.fromWire(errorCode), msg);
                    state = chunkType == ReplyType.ERROR_OFFSET.code() ? State.ERROR_OFFSET : State.SKIP;
                    break;
                }
                case ERROR_OFFSET: {
                    if (!have(in, 8)) {
                        return Step.NEED_MORE;
                    }
                    long off = in.getLong();
                    chunkRemaining -= 8;
                    if (!within(off, 1)) {
                        return fail(new ProtocolViolation.ChunkOutsideRequest(current.cookie(), off, 1,
                                current.offset, current.length));
                    }
                    if (current.errorOffset < 0) {
                        current.errorOffset = off;
                    }
                    state = State.SKIP;
                    break;
                }
                case SKIP: {
                    if (chunkRemaining > 0) {
                        int n = (int) Math.min(in.remaining(), chunkRemaining);
                        in.position(in.position() + n);
                        chunkRemaining -= n;
                        if (chunkRemaining > 0) {
                            needed = 1;
                            return Step.NEED_MORE;
                        }
                    }
                    Step s = endChunk();
                    if (s != null) {
                        return s;
                    }
                    break;
                }
                default:
                    throw new AssertionError(state);
            }
        }
    }

    private Step readHeader(ByteBuffer in) {
        int p = in.position();
        long cookie;
        if (mode == TransmissionMode.EXTENDED) {
            if (!peek(in, NbdSizes.EXTENDED_REPLY_HEADER)) {
                return Step.NEED_MORE;
            }
            int magic = in.getInt(p);
            if (magic != NbdMagic.EXTENDED_REPLY) {
                return fail(new ProtocolViolation.BadMagic("extended reply header", NbdMagic.EXTENDED_REPLY, magic));
            }
            cookie = in.getLong(p + 8);
            InFlightRequests.Slot<T> s = requests.lookup(cookie);
            if (s == null) {
                return fail(new ProtocolViolation.UnknownCookie(cookie));
            }
            long requestOffset = in.getLong(p + 16);
            if (requestOffset != s.offset) {
                return fail(new ProtocolViolation.MalformedMessage("extended reply header",
                        "offset " + requestOffset + " does not match the request's " + s.offset));
            }
            in.position(p + NbdSizes.EXTENDED_REPLY_HEADER);
            return beginChunk(s, Short.toUnsignedInt(in.getShort(p + 4)), Short.toUnsignedInt(in.getShort(p + 6)),
                    in.getLong(p + 24));
        }
        if (!peek(in, 4)) {
            return Step.NEED_MORE;
        }
        int magic = in.getInt(p);
        if (magic == NbdMagic.SIMPLE_REPLY) {
            if (!peek(in, NbdSizes.SIMPLE_REPLY_HEADER)) {
                return Step.NEED_MORE;
            }
            cookie = in.getLong(p + 8);
            InFlightRequests.Slot<T> s = requests.lookup(cookie);
            if (s == null) {
                return fail(new ProtocolViolation.UnknownCookie(cookie));
            }
            int error = in.getInt(p + 4);
            in.position(p + NbdSizes.SIMPLE_REPLY_HEADER);
            current = s;
            // With structured replies a READ must not get a simple reply; an error one carries no payload,
            // so it is unambiguous and accepted, a success one would leave the stream undecodable.
            if (s.command == Command.READ && mode == TransmissionMode.STRUCTURED && error == 0) {
                return fail(new ProtocolViolation.UnexpectedReply("simple reply to READ after structured replies were negotiated"));
            }
            if (error != 0) {
                recordError(NbdError.fromWire(error), null);
                return complete();
            }
            if (s.command == Command.READ) {
                state = State.SIMPLE_DATA;
                dataOffset = 0;
                dataRemaining = s.length;
                s.coverage.add(0, s.length);
                return null;
            }
            return complete();
        }
        if (magic == NbdMagic.STRUCTURED_REPLY) {
            if (mode != TransmissionMode.STRUCTURED) {
                return fail(new ProtocolViolation.UnexpectedReply("structured reply chunk but structured replies were not negotiated"));
            }
            if (!peek(in, NbdSizes.STRUCTURED_REPLY_HEADER)) {
                return Step.NEED_MORE;
            }
            cookie = in.getLong(p + 8);
            InFlightRequests.Slot<T> s = requests.lookup(cookie);
            if (s == null) {
                return fail(new ProtocolViolation.UnknownCookie(cookie));
            }
            in.position(p + NbdSizes.STRUCTURED_REPLY_HEADER);
            return beginChunk(s, Short.toUnsignedInt(in.getShort(p + 4)), Short.toUnsignedInt(in.getShort(p + 6)),
                    Integer.toUnsignedLong(in.getInt(p + 16)));
        }
        return fail(new ProtocolViolation.BadMagic("reply header",
                mode == TransmissionMode.SIMPLE ? NbdMagic.SIMPLE_REPLY : NbdMagic.STRUCTURED_REPLY, magic));
    }

    private Step beginChunk(InFlightRequests.Slot<T> s, int flags, int type, long length) {
        current = s;
        chunkFlags = flags;
        chunkType = type;
        chunkRemaining = length;
        if (length < 0) {
            return fail(new ProtocolViolation.OversizeLength("reply chunk", length, Long.MAX_VALUE));
        }
        ReplyType known = ReplyType.fromCode(type);
        if (known == null) {
            if (!ReplyType.isError(type)) {
                return fail(new ProtocolViolation.UnknownChunkType(type));
            }
            return beginError(6);
        }
        switch (known) {
            case NONE:
                if (length != 0) {
                    return fail(new ProtocolViolation.MalformedMessage("NONE chunk", "length " + length + " is not 0"));
                }
                if ((flags & ReplyType.FLAG_DONE) == 0) {
                    return fail(new ProtocolViolation.MalformedMessage("NONE chunk", "DONE flag not set"));
                }
                return endChunk();
            case OFFSET_DATA:
                if (s.command != Command.READ) {
                    return fail(new ProtocolViolation.UnexpectedReply("OFFSET_DATA chunk for " + s.command));
                }
                if (length < 9) {
                    return fail(new ProtocolViolation.MalformedMessage("OFFSET_DATA chunk", "length " + length + " < 9"));
                }
                if (length - 8 > s.length) {
                    return fail(new ProtocolViolation.OversizeLength("OFFSET_DATA chunk", length - 8, s.length));
                }
                state = State.OFFSET_DATA_PREFIX;
                return null;
            case OFFSET_HOLE:
                if (s.command != Command.READ) {
                    return fail(new ProtocolViolation.UnexpectedReply("OFFSET_HOLE chunk for " + s.command));
                }
                if (length != 12) {
                    return fail(new ProtocolViolation.MalformedMessage("OFFSET_HOLE chunk", "length " + length + " is not 12"));
                }
                state = State.HOLE;
                return null;
            case BLOCK_STATUS:
            case BLOCK_STATUS_EXT: {
                boolean ext = known == ReplyType.BLOCK_STATUS_EXT;
                if (s.command != Command.BLOCK_STATUS) {
                    return fail(new ProtocolViolation.UnexpectedReply(known + " chunk for " + s.command));
                }
                if (ext != (mode == TransmissionMode.EXTENDED)) {
                    return fail(new ProtocolViolation.UnexpectedReply(known + " chunk in " + mode + " mode"));
                }
                long prefix = ext ? 8 : 4;
                long unit = ext ? 16 : 8;
                if (length > MAX_STATUS_CHUNK) {
                    return fail(new ProtocolViolation.OversizeLength(known + " chunk", length, MAX_STATUS_CHUNK));
                }
                if (length < prefix + unit || (length - prefix) % unit != 0) {
                    return fail(new ProtocolViolation.MalformedMessage(known + " chunk", "length " + length));
                }
                state = State.STATUS_PREFIX;
                return null;
            }
            case ERROR:
                return beginError(6);
            case ERROR_OFFSET:
                return beginError(14);
            default:
                throw new AssertionError(known);
        }
    }

    private Step beginError(int minLength) {
        if (chunkRemaining < minLength) {
            return fail(new ProtocolViolation.MalformedMessage("error chunk type " + chunkType,
                    "length " + chunkRemaining + " < " + minLength));
        }
        if (chunkRemaining > MAX_ERROR_CHUNK) {
            return fail(new ProtocolViolation.OversizeLength("error chunk", chunkRemaining, MAX_ERROR_CHUNK));
        }
        state = State.ERROR_HEAD;
        return null;
    }

    /** Validates a content range against its request and earlier chunks, and claims it. */
    private Step claimRange(long chunkOffset, long length) {
        InFlightRequests.Slot<T> s = current;
        if (!within(chunkOffset, length)) {
            return fail(new ProtocolViolation.ChunkOutsideRequest(s.cookie(), chunkOffset, length, s.offset, s.length));
        }
        if ((s.flags & CommandFlag.DF) != 0 && s.contentChunks > 0) {
            return fail(new ProtocolViolation.UnexpectedReply("second content chunk for a READ with DF"));
        }
        if (!s.coverage.add(chunkOffset - s.offset, length)) {
            return fail(new ProtocolViolation.OverlappingChunk(s.cookie(), chunkOffset, length));
        }
        s.contentChunks++;
        return null;
    }

    private boolean within(long chunkOffset, long length) {
        InFlightRequests.Slot<T> s = current;
        long rel = chunkOffset - s.offset;
        return chunkOffset >= s.offset && rel <= s.length && length >= 0 && length <= s.length - rel;
    }

    private Step endChunk() {
        if ((chunkFlags & ReplyType.FLAG_DONE) != 0) {
            return complete();
        }
        state = State.HEADER;
        current = null;
        return null;
    }

    private void recordError(NbdError e, String message) {
        if (current.error == null) {
            current.error = e;
            current.message = message;
        }
        if (e == NbdError.ESHUTDOWN) {
            shutdownRequested = true;
        }
    }

    private Step complete() {
        InFlightRequests.Slot<T> s = current;
        if (s.error == null && s.command == Command.READ && s.coverage.covered() != s.length) {
            return fail(new ProtocolViolation.UnexpectedReply("READ of " + s.length + " bytes completed with only "
                    + s.coverage.covered() + " bytes of data and holes and no error"));
        }
        completedAttachment = s.attachment;
        completedCommand = s.command;
        completedError = s.error;
        completedMessage = s.message;
        completedErrorOffset = s.errorOffset;
        requests.release(s);
        current = null;
        state = State.HEADER;
        return Step.COMPLETED;
    }

    private Step fail(ProtocolViolation v) {
        violation = v;
        state = State.DEAD;
        return Step.VIOLATION;
    }

    private boolean have(ByteBuffer in, int n) {
        if (in.remaining() >= n) {
            return true;
        }
        needed = n;
        return false;
    }

    private boolean peek(ByteBuffer in, int n) {
        return have(in, n);
    }
}
