package io.nbdgate.protocol.wire;

import io.nbdgate.protocol.Command;
import io.nbdgate.protocol.NbdError;
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
    private final ReadRange range = new ReadRange();
    private final Completion<T> completion = new Completion<>();

    private State state = State.HEADER;
    private int needed;
    private ProtocolViolation violation;
    private boolean shutdownRequested;

    // The chunk being decoded.
    private InFlightRequests.Slot<T> current;
    private int chunkFlags;
    private long chunkRemaining;

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
        return range.offset();
    }

    /** Bytes still to receive for a DATA step, or the hole's size for a ZEROES step. */
    public long dataLength() {
        return range.length();
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
        if ((state != State.SIMPLE_DATA && state != State.CHUNK_DATA) || n < 0 || n > range.remaining()) {
            throw new IllegalStateException("dataReceived(" + n + ") with " + range.remaining() + " expected in " + state);
        }
        range.received(n);
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
        return range.copy(in, requestBuffer);
    }

    /** Advances over {@code in} until the caller has something to do. Consumes only header bytes. */
    public Step next(ByteBuffer in) {
        range.holeReported();
        while (true) {
            // Each state's handler returns the caller's next step, or null to go on decoding.
            Step step = switch (state) {
                case DEAD -> Step.VIOLATION;
                case HEADER -> readHeader(in);
                case SIMPLE_DATA -> range.remaining() > 0 ? Step.DATA : complete();
                case CHUNK_DATA -> range.remaining() > 0 ? Step.DATA : endChunk();
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
        return switch (range.readData(in, current, chunkRemaining)) {
            case NEED_MORE -> needMore(range.needed());
            case VIOLATION -> fail(range.violation());
            default -> {
                chunkRemaining = 0;
                state = State.CHUNK_DATA;
                yield Step.DATA;
            }
        };
    }

    private Step readHole(ByteBuffer in) {
        return switch (range.readHole(in, current)) {
            case NEED_MORE -> needMore(range.needed());
            case VIOLATION -> fail(range.violation());
            default -> {
                chunkRemaining = 0;
                state = State.CHUNK_DATA;
                yield Step.ZEROES;
            }
        };
    }

    private Step decodeBlockStatus(ByteBuffer in) {
        return switch (statusChunk.decode(in)) {
            case NEED_MORE -> needMore(statusChunk.needed());
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
                return needMore(1);
            }
        }
        return endChunk();
    }

    private Step readHeader(ByteBuffer in) {
        switch (header.read(in, mode)) {
            case NEED_MORE -> {
                return needMore(header.needed());
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
        ProtocolViolation bad = header.refusal(s.request, mode);
        if (bad != null) {
            return fail(bad);
        }
        current = s;
        if (!header.simple()) {
            return beginChunk(s, header.flags(), header.type(), header.length());
        }
        if (header.error() != 0) {
            recordError(NbdError.fromWire(header.error()), null);
            return complete();
        }
        if (s.request.command() != Command.READ) {
            return complete();
        }
        state = State.SIMPLE_DATA;
        range.whole(s);
        return null;
    }

    /** Starts a chunk the header said may answer {@code s}. */
    private Step beginChunk(InFlightRequests.Slot<T> s, int flags, int type, long length) {
        chunkFlags = flags;
        chunkRemaining = length;
        ReplyType known = ReplyType.fromCode(type);
        switch (known == null ? ReplyType.ERROR : known) {
            case NONE -> {
                return endChunk();
            }
            case OFFSET_DATA -> state = State.OFFSET_DATA_PREFIX;
            case OFFSET_HOLE -> state = State.HOLE;
            case BLOCK_STATUS, BLOCK_STATUS_EXT -> {
                ProtocolViolation bad = statusChunk.begin(known, length);
                if (bad != null) {
                    return fail(bad);
                }
                s.contentChunks++;
                state = State.BLOCK_STATUS;
            }
            case ERROR, ERROR_OFFSET -> {
                return beginError(type);
            }
        }
        return null;
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
                return needMore(errorChunk.needed());
            }
            case VIOLATION -> {
                return fail(errorChunk.violation());
            }
            default -> { }
        }
        recordError(errorChunk.error(), errorChunk.message());
        ProtocolViolation bad = errorChunk.hasOffset() ? current.errorAt(errorChunk.offset()) : null;
        if (bad != null) {
            return fail(bad);
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
        current.error(e, message);
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

    private Step needMore(int n) {
        needed = n;
        return Step.NEED_MORE;
    }

}
