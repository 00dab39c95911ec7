package io.nbdgate.protocol.wire;

import io.nbdgate.protocol.Command;
import io.nbdgate.protocol.NbdError;
import io.nbdgate.protocol.NbdSizes;
import io.nbdgate.protocol.ProtocolViolation;
import io.nbdgate.protocol.ReplyType;
import io.nbdgate.protocol.TransmissionMode;
import java.nio.ByteBuffer;
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
 * @param <T> the caller's request record; the reassembler hands it back with each step
 */
public final class ReplyReassembler<T extends SentRequest> {

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
        /** A request finished: {@link #completed()}. */
        COMPLETED,
        /** The stream broke the protocol: {@link #violation()}. The connection must be dropped. */
        VIOLATION
    }

    private enum State { HEADER, SIMPLE_DATA, CHUNK_DATA, OFFSET_DATA_PREFIX, HOLE, BLOCK_STATUS, ERROR, SKIP, DEAD }

    private final TransmissionMode mode;
    private final InFlightRequests<T> requests;
    private final ReplyHeader header = new ReplyHeader();
    private final ErrorChunk errorChunk = new ErrorChunk();
    private final BlockStatusChunk statusChunk = new BlockStatusChunk();
    private final Completion<T> completion = new Completion<>();

    private State state = State.HEADER;
    private int needed;
    private ProtocolViolation violation;
    private boolean shutdownRequested;

    // The chunk being decoded.
    private InFlightRequests.Slot<T> current;
    private int chunkFlags;
    private long chunkRemaining;
    private long dataOffset;
    private long dataRemaining;
    private long holeLength;
    private boolean holeStep;

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
     * an unknown cookie). The request must not change until it completes or is drained.
     */
    public long register(T request) {
        return requests.register(request);
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
        T a = s.request;
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
     */
    public int boundaryReadAhead() {
        return ReplyHeader.boundaryReadAhead(mode);
    }

    public ProtocolViolation violation() {
        return violation;
    }

    public T dataAttachment() {
        return current == null ? null : current.request;
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
        return statusChunk.contextId();
    }

    public long extentLength() {
        return statusChunk.extentLength();
    }

    public long extentFlags() {
        return statusChunk.extentFlags();
    }

    /** What the last {@link Step#COMPLETED} finished, and how. */
    public Completion<T> completed() {
        return completion;
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
            // Each state's handler returns the caller's next step, or null to go on decoding.
            Step step = switch (state) {
                case DEAD -> Step.VIOLATION;
                case HEADER -> readHeader(in);
                case SIMPLE_DATA -> dataRemaining > 0 ? Step.DATA : complete();
                case CHUNK_DATA -> dataRemaining > 0 ? Step.DATA : endChunk();
                case OFFSET_DATA_PREFIX -> readDataOffset(in);
                case HOLE -> readHole(in);
                case BLOCK_STATUS -> decodeBlockStatus(in);
                case ERROR -> decodeError(in);
                case SKIP -> skip(in);
            };
            if (step != null) {
                return step;
            }
        }
    }

    private Step readDataOffset(ByteBuffer in) {
        if (!have(in, 8)) {
            return Step.NEED_MORE;
        }
        long off = in.getLong();
        long len = chunkRemaining - 8;
        ProtocolViolation bad = current.claim(off, len);
        if (bad != null) {
            return fail(bad);
        }
        chunkRemaining = 0;
        state = State.CHUNK_DATA;
        dataOffset = off - current.request.offset();
        dataRemaining = len;
        return Step.DATA;
    }

    private Step readHole(ByteBuffer in) {
        if (!have(in, 12)) {
            return Step.NEED_MORE;
        }
        long off = in.getLong();
        long size = Integer.toUnsignedLong(in.getInt());
        if (size == 0) {
            return fail(new ProtocolViolation.MalformedMessage("OFFSET_HOLE chunk", "hole size is 0"));
        }
        ProtocolViolation bad = current.claim(off, size);
        if (bad != null) {
            return fail(bad);
        }
        chunkRemaining = 0;
        dataOffset = off - current.request.offset();
        holeLength = size;
        holeStep = true;
        state = State.CHUNK_DATA;
        dataRemaining = 0;
        return Step.ZEROES;
    }

    private Step decodeBlockStatus(ByteBuffer in) {
        return switch (statusChunk.decode(in)) {
            case NEED_MORE -> {
                needed = statusChunk.needed();
                yield Step.NEED_MORE;
            }
            case EXTENT -> Step.EXTENT;
            case VIOLATION -> fail(statusChunk.violation());
            case DONE -> {
                chunkRemaining = 0;
                yield endChunk();
            }
        };
    }

    /** The rest of a chunk this client reads no further (an error chunk's unknown tail). */
    private Step skip(ByteBuffer in) {
        if (chunkRemaining > 0) {
            int n = (int) Math.min(in.remaining(), chunkRemaining);
            in.position(in.position() + n);
            chunkRemaining -= n;
            if (chunkRemaining > 0) {
                needed = 1;
                return Step.NEED_MORE;
            }
        }
        return endChunk();
    }

    private Step readHeader(ByteBuffer in) {
        switch (header.read(in, mode)) {
            case NEED_MORE -> {
                needed = header.needed();
                return Step.NEED_MORE;
            }
            case VIOLATION -> {
                return fail(header.violation());
            }
            default -> { }
        }
        InFlightRequests.Slot<T> s = requests.lookup(header.cookie());
        if (s == null) {
            return fail(new ProtocolViolation.UnknownCookie(header.cookie()));
        }
        if (!header.simple()) {
            if (mode == TransmissionMode.EXTENDED && header.requestOffset() != s.request.offset()) {
                return fail(new ProtocolViolation.MalformedMessage("extended reply header",
                        "offset " + header.requestOffset() + " does not match the request's " + s.request.offset()));
            }
            return beginChunk(s, header.flags(), header.type(), header.length());
        }
        current = s;
        int error = header.error();
        Command command = s.request.command();
        // With structured replies a READ must not get a simple reply; an error one carries no payload,
        // so it is unambiguous and accepted, a success one would leave the stream undecodable.
        if (command == Command.READ && mode == TransmissionMode.STRUCTURED && error == 0) {
            return fail(new ProtocolViolation.UnexpectedReply("simple reply to READ after structured replies were negotiated"));
        }
        if (error != 0) {
            recordError(NbdError.fromWire(error), null);
            return complete();
        }
        if (command != Command.READ) {
            return complete();
        }
        state = State.SIMPLE_DATA;
        dataOffset = 0;
        dataRemaining = s.request.length();
        s.coverage.add(0, dataRemaining);
        return null;
    }

    private Step beginChunk(InFlightRequests.Slot<T> s, int flags, int type, long length) {
        current = s;
        chunkFlags = flags;
        chunkRemaining = length;
        if (length < 0) {
            return fail(new ProtocolViolation.OversizeLength("reply chunk", length, Long.MAX_VALUE));
        }
        ReplyType known = ReplyType.fromCode(type);
        if (known == null) {
            if (!ReplyType.isError(type)) {
                return fail(new ProtocolViolation.UnknownChunkType(type));
            }
            return beginError(type);
        }
        Command command = s.request.command();
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
                if (command != Command.READ) {
                    return fail(new ProtocolViolation.UnexpectedReply("OFFSET_DATA chunk for " + command));
                }
                if (length < 9) {
                    return fail(new ProtocolViolation.MalformedMessage("OFFSET_DATA chunk", "length " + length + " < 9"));
                }
                if (length - 8 > s.request.length()) {
                    return fail(new ProtocolViolation.OversizeLength("OFFSET_DATA chunk", length - 8, s.request.length()));
                }
                state = State.OFFSET_DATA_PREFIX;
                return null;
            case OFFSET_HOLE:
                if (command != Command.READ) {
                    return fail(new ProtocolViolation.UnexpectedReply("OFFSET_HOLE chunk for " + command));
                }
                if (length != 12) {
                    return fail(new ProtocolViolation.MalformedMessage("OFFSET_HOLE chunk", "length " + length + " is not 12"));
                }
                state = State.HOLE;
                return null;
            case BLOCK_STATUS:
            case BLOCK_STATUS_EXT: {
                if (command != Command.BLOCK_STATUS) {
                    return fail(new ProtocolViolation.UnexpectedReply(known + " chunk for " + command));
                }
                if ((known == ReplyType.BLOCK_STATUS_EXT) != (mode == TransmissionMode.EXTENDED)) {
                    return fail(new ProtocolViolation.UnexpectedReply(known + " chunk in " + mode + " mode"));
                }
                ProtocolViolation bad = statusChunk.begin(known, length);
                if (bad != null) {
                    return fail(bad);
                }
                s.contentChunks++;
                state = State.BLOCK_STATUS;
                return null;
            }
            case ERROR:
            case ERROR_OFFSET:
                return beginError(type);
            default:
                throw new AssertionError(known);
        }
    }

    private Step beginError(int type) {
        ProtocolViolation bad = errorChunk.begin(type, chunkRemaining);
        if (bad != null) {
            return fail(bad);
        }
        state = State.ERROR;
        return null;
    }

    /** Decodes an error chunk's payload into the request's outcome, then skips the rest of the chunk. */
    private Step decodeError(ByteBuffer in) {
        switch (errorChunk.decode(in)) {
            case NEED_MORE -> {
                needed = errorChunk.needed();
                return Step.NEED_MORE;
            }
            case VIOLATION -> {
                return fail(errorChunk.violation());
            }
            default -> { }
        }
        recordError(errorChunk.error(), errorChunk.message());
        if (errorChunk.hasOffset()) {
            long off = errorChunk.offset();
            if (!current.contains(off, 1)) {
                return fail(new ProtocolViolation.ChunkOutsideRequest(current.cookie(), off, 1,
                        current.request.offset(), current.request.length()));
            }
            if (current.errorOffset < 0) {
                current.errorOffset = off;
            }
        }
        chunkRemaining = errorChunk.remaining();
        state = State.SKIP;
        return null;
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
        long length = s.request.length();
        if (s.error == null && s.request.command() == Command.READ && s.coverage.covered() != length) {
            return fail(new ProtocolViolation.UnexpectedReply("READ of " + length + " bytes completed with only "
                    + s.coverage.covered() + " bytes of data and holes and no error"));
        }
        completion.request = s.request;
        completion.error = s.error;
        completion.message = s.message;
        completion.errorOffset = s.errorOffset;
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

}
