package io.nbdgate.protocol.wire;

import io.nbdgate.protocol.CommandFlag;
import io.nbdgate.protocol.NbdError;
import io.nbdgate.protocol.ProtocolViolation;
import java.util.function.Consumer;

/**
 * The requests a connection has sent and not yet seen answered, by cookie, and what each one's reply has said
 * so far. A cookie is the slot index in its low 32 bits and
 * the slot's generation in the high 32, so a late reply to a reused slot is an unknown cookie.
 */
final class InFlightRequests<T extends SentRequest> {
    private final Slot<T>[] slots;
    private final int[] free;
    private int freeCount;
    private int inFlight;

    @SuppressWarnings("unchecked")
    InFlightRequests(int capacity) {
        if (capacity < 1 || capacity > (1 << 24)) {
            throw new IllegalArgumentException("maxInFlight " + capacity);
        }
        slots = new Slot[capacity];
        free = new int[capacity];
        for (int i = 0; i < capacity; i++) {
            slots[i] = new Slot<>(i);
            free[i] = capacity - 1 - i;
        }
        freeCount = capacity;
    }

    boolean hasCapacity() {
        return freeCount > 0;
    }

    int inFlight() {
        return inFlight;
    }

    long register(T request) {
        if (freeCount == 0) {
            throw new IllegalStateException("no free request slot; check hasCapacity() first");
        }
        Slot<T> s = slots[free[--freeCount]];
        s.generation++;
        s.inUse = true;
        s.request = request;
        s.error = null;
        s.message = null;
        s.errorOffset = -1;
        s.contentChunks = 0;
        s.coverage.clear();
        inFlight++;
        return s.cookie();
    }

    /** The request of {@code cookie}, or null if none is in flight under it. */
    Slot<T> lookup(long cookie) {
        int index = (int) cookie;
        if (index < 0 || index >= slots.length) {
            return null;
        }
        Slot<T> s = slots[index];
        return s.inUse && s.generation == (int) (cookie >>> 32) ? s : null;
    }

    void release(Slot<T> s) {
        s.inUse = false;
        s.request = null;
        free[freeCount++] = s.index;
        inFlight--;
    }

    /** Releases every request in flight, handing its attachment to {@code sink}. */
    void drain(Consumer<T> sink) {
        for (Slot<T> s : slots) {
            if (s.inUse) {
                T a = s.request;
                release(s);
                sink.accept(a);
            }
        }
    }

    /** One request in flight and the state of its reply. */
    static final class Slot<T extends SentRequest> {
        final int index;
        int generation;
        boolean inUse;
        T request;
        NbdError error;
        String message;
        long errorOffset;
        int contentChunks;
        final Coverage coverage = new Coverage();

        Slot(int index) {
            this.index = index;
        }

        long cookie() {
            return ((long) generation << 32) | index;
        }

        /** True if the {@code length} bytes at absolute {@code offset} lie inside the request's range. */
        boolean contains(long offset, long length) {
            long start = request.offset();
            long rel = offset - start;
            return offset >= start && rel <= request.length() && length >= 0 && length <= request.length() - rel;
        }

        /** Records an error for the request; the first one is its outcome. */
        void error(NbdError e, String why) {
            if (error == null) {
                error = e;
                message = why;
            }
        }

        /** Checks an ERROR_OFFSET chunk's offset against the request and keeps the first; null if fine. */
        ProtocolViolation errorAt(long offset) {
            if (!contains(offset, 1)) {
                return new ProtocolViolation.ChunkOutsideRequest(cookie(), offset, 1, request.offset(), request.length());
            }
            if (errorOffset < 0) {
                errorOffset = offset;
            }
            return null;
        }

        /** Checks a data or hole chunk against the request and the chunks before it, and records it; null if fine. */
        ProtocolViolation claim(long offset, long length) {
            if (!contains(offset, length)) {
                return new ProtocolViolation.ChunkOutsideRequest(cookie(), offset, length, request.offset(),
                        request.length());
            }
            if ((request.flags() & CommandFlag.DF) != 0 && contentChunks > 0) {
                return new ProtocolViolation.UnexpectedReply("second content chunk for a READ with DF");
            }
            if (!coverage.add(offset - request.offset(), length)) {
                return new ProtocolViolation.OverlappingChunk(cookie(), offset, length);
            }
            contentChunks++;
            return null;
        }
    }
}
