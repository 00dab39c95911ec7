package io.nbdgate.gateway.metrics;

import io.nbdgate.protocol.Command;
import java.util.concurrent.atomic.AtomicLongArray;

/**
 * One ublk queue's request counts, bytes, errors and latency histogram. Written by the queue's event-loop thread
 * only, read by a scrape on any thread: each slot has one writer, so an update is a plain read and an opaque
 * store (a plain MOV on x86: no lock, no fence, no allocation), and a reader sees whole values, at worst a
 * request behind. The latency of a request runs from {@link #started} (the ublk request reached the session) to
 * {@link #finished} (its result goes back to the kernel).
 */
public final class QueueCounters {
    /** The operations counted, by index; the label values of the {@code op} tag. */
    static final String[] OPS = {"read", "write", "flush", "trim", "write_zeroes"};
    public static final int READ = 0, WRITE = 1, FLUSH = 2, TRIM = 3, WRITE_ZEROES = 4;
    /** Errno numbers above this are counted together in slot 0 (Linux's are all below it). */
    public static final int MAX_ERRNO = 133;

    /**
     * Upper bounds of the latency buckets in nanoseconds: 10 µs doubling up to 10.49 s, plus +Inf. Doubling keeps
     * a quantile's error within a factor of two at any scale, and the bucket of a value is one log2.
     */
    static final long FIRST_BOUND_NANOS = 10_000;
    public static final int BOUNDS = 21;
    /** Buckets per operation: the bounds and +Inf. */
    public static final int BUCKETS = BOUNDS + 1;

    private static final int[] OP_OF_COMMAND = new int[Command.values().length];

    static {
        java.util.Arrays.fill(OP_OF_COMMAND, -1);
        OP_OF_COMMAND[Command.READ.ordinal()] = READ;
        OP_OF_COMMAND[Command.WRITE.ordinal()] = WRITE;
        OP_OF_COMMAND[Command.FLUSH.ordinal()] = FLUSH;
        OP_OF_COMMAND[Command.TRIM.ordinal()] = TRIM;
        OP_OF_COMMAND[Command.WRITE_ZEROES.ordinal()] = WRITE_ZEROES;
    }

    private final AtomicLongArray requests = new AtomicLongArray(OPS.length);
    private final AtomicLongArray bytes = new AtomicLongArray(OPS.length);
    private final AtomicLongArray latencyNanos = new AtomicLongArray(OPS.length);
    private final AtomicLongArray buckets = new AtomicLongArray(OPS.length * BUCKETS);
    private final AtomicLongArray errors = new AtomicLongArray(MAX_ERRNO + 1);
    /** [0] requests started, [1] finished: in flight is the difference. */
    private final AtomicLongArray flow = new AtomicLongArray(2);
    // Per tag, loop thread only: when and as what the tag's request arrived.
    private final long[] arrivedNanos;
    private final byte[] opOf;

    public QueueCounters(int depth) {
        arrivedNanos = new long[depth];
        opOf = new byte[depth];
    }

    /** The operation index of an NBD command, or -1 for one not counted by operation. */
    public static int op(Command c) {
        return OP_OF_COMMAND[c.ordinal()];
    }

    /** Upper bound of bucket {@code i} in nanoseconds; {@code Long.MAX_VALUE} for the last (+Inf). */
    public static long boundNanos(int i) {
        return i < BOUNDS ? FIRST_BOUND_NANOS << i : Long.MAX_VALUE;
    }

    /** The bucket that counts a latency of {@code nanos}: the first whose bound is at least it. */
    static int bucket(long nanos) {
        long units = Math.max(1, (nanos - 1) / FIRST_BOUND_NANOS + 1); // ceil, in 10 µs, without overflow
        int b = 64 - Long.numberOfLeadingZeros(units - 1);                          // ceil(log2(units))
        return Math.min(b, BOUNDS);
    }

    /** Loop thread: the request of {@code tag} arrived as operation {@code op} (-1: none counted). */
    public void started(int tag, int op, long nowNanos) {
        arrivedNanos[tag] = nowNanos;
        opOf[tag] = (byte) op;
        add(flow, 0, 1);
    }

    /** Loop thread: the request of {@code tag} ends with {@code result} (bytes, or minus an errno). */
    public void finished(int tag, long length, int result, long nowNanos) {
        add(flow, 1, 1);
        int op = opOf[tag];
        if (result < 0) {
            add(errors, -result <= MAX_ERRNO ? -result : 0, 1);
        }
        if (op < 0) {
            return;
        }
        long nanos = nowNanos - arrivedNanos[tag];
        add(requests, op, 1);
        if (result >= 0) {
            add(bytes, op, length);
        }
        add(latencyNanos, op, nanos);
        add(buckets, op * BUCKETS + bucket(nanos), 1);
    }

    // Release: a reader that sees a count also sees the counts written before it (started before finished).
    // On x86 that is an ordinary store the compiler may not move; no fence on the loop thread.
    private static void add(AtomicLongArray a, int i, long n) {
        a.setRelease(i, a.getPlain(i) + n);
    }

    // ---------------------------------------------------------------- reading, any thread

    public long requests(int op) {
        return requests.getOpaque(op);
    }

    /** Bytes of the operation's successful requests (what they read, wrote, trimmed or zeroed). */
    public long bytes(int op) {
        return bytes.getOpaque(op);
    }

    /** Requests that ended with {@code errno}; slot 0 counts those above {@link #MAX_ERRNO}. */
    public long errors(int errno) {
        return errors.getOpaque(errno);
    }

    /** Requests that arrived and have not been answered yet. */
    public long inFlight() {
        // Finished is read again: a reader paused between the two reads would count what finished meanwhile.
        // Acquire, so the three reads happen in this order (opaque ones may be reordered: a scrape once saw 3 in
        // flight on a queue that had one request at a time).
        for (int i = 0; i < 100; i++) {
            long finished = flow.getAcquire(1);
            long started = flow.getAcquire(0);
            if (flow.getAcquire(1) == finished) {
                return Math.clamp(started - finished, 0, arrivedNanos.length);
            }
        }
        // Requests kept finishing between every two reads: started read before finished can miss one that
        // started meanwhile but never counts one twice, so the gauge never shows more than was in flight.
        long started = flow.getAcquire(0);
        return Math.clamp(started - flow.getAcquire(1), 0, arrivedNanos.length);
    }

    /** Sum of the operation's latencies, in nanoseconds. */
    public long latencyNanos(int op) {
        return latencyNanos.getOpaque(op);
    }

    /** Requests of the operation in bucket {@code i} alone (not cumulative). */
    public long bucketCount(int op, int i) {
        return buckets.getOpaque(op * BUCKETS + i);
    }
}
