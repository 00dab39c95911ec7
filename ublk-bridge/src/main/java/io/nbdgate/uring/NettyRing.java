package io.nbdgate.uring;

import io.netty.channel.uring.IoUringIoHandler;
import static java.lang.foreign.ValueLayout.JAVA_BYTE;
import static java.lang.foreign.ValueLayout.JAVA_LONG;

import java.lang.foreign.MemorySegment;
import java.lang.invoke.MethodHandle;
import java.lang.invoke.MethodHandles;
import java.lang.reflect.Field;
import java.lang.reflect.Method;
import java.util.BitSet;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;

/**
 * What Netty's io_uring transport does not expose: the ring fd (for io_uring_register) and the SQE
 * just enqueued (to write {@code ublksrv_io_cmd.addr}, bytes 56-63, which IoUringIoOps cannot carry).
 * Reached by reflection into Netty 4.2.12 internals; {@link #SELF_CHECK} fails loudly if they moved.
 * Every method must run on the handler's event-loop thread (SINGLE_ISSUER ring).
 */
public final class NettyRing {
    private static final MethodHandle RING_BUFFER; // IoUringIoHandler.ringBuffer
    private static final MethodHandle RING_FD; // RingBuffer.fd()
    private static final MethodHandle SUBMISSION_QUEUE; // RingBuffer.ioUringSubmissionQueue()
    private static final MethodHandle SQ_TAIL; // SubmissionQueue.tail
    private static final MethodHandle SQ_HEAD; // SubmissionQueue.head (entries the kernel consumed)
    private static final MethodHandle SQ_MASK; // SubmissionQueue.ringMask
    private static final MethodHandle SQ_ENTRIES; // SubmissionQueue.ringEntries
    private static final MethodHandle SQ_ARRAY_ADDRESS; // SubmissionQueue.submissionQueueArrayAddress()
    private static final MethodHandle SQ_SUBMIT; // SubmissionQueue.submit(): io_uring_enter for what is queued
    /** Null when Netty's internals match what this class was written against; the reason otherwise. */
    public static final String SELF_CHECK;
    /** Fixed-buffer slots every user of a loop's ring asks for: the first caller's count is the table's size. */
    public static final int DEFAULT_BUFFER_SLOTS = 4096;

    private static final Map<IoUringIoHandler, NettyRing> RINGS = new ConcurrentHashMap<>();

    static {
        MethodHandle rb = null, fd = null, sq = null, tail = null, head = null, mask = null, entries = null,
                arr = null, submit = null;
        String problem = null;
        try {
            MethodHandles.Lookup l = MethodHandles.lookup();
            Field f = IoUringIoHandler.class.getDeclaredField("ringBuffer");
            f.setAccessible(true);
            rb = l.unreflectGetter(f);
            Class<?> ringBuffer = f.getType();
            Method m = ringBuffer.getDeclaredMethod("fd");
            m.setAccessible(true);
            fd = l.unreflect(m);
            m = ringBuffer.getDeclaredMethod("ioUringSubmissionQueue");
            m.setAccessible(true);
            sq = l.unreflect(m);
            Class<?> sqClass = m.getReturnType();
            f = sqClass.getDeclaredField("tail");
            f.setAccessible(true);
            tail = l.unreflectGetter(f);
            f = sqClass.getDeclaredField("head");
            f.setAccessible(true);
            head = l.unreflectGetter(f);
            f = sqClass.getDeclaredField("ringMask");
            f.setAccessible(true);
            mask = l.unreflectGetter(f);
            f = sqClass.getDeclaredField("ringEntries");
            f.setAccessible(true);
            entries = l.unreflectGetter(f);
            m = sqClass.getDeclaredMethod("submissionQueueArrayAddress");
            m.setAccessible(true);
            arr = l.unreflect(m);
            m = sqClass.getDeclaredMethod("submit");
            m.setAccessible(true);
            submit = l.unreflect(m);
            int sqeSize = (int) readStatic(sqClass, "SQE_SIZE");
            if (sqeSize != IoUringAbi.SQE_SIZE) {
                problem = "Netty SQE_SIZE is " + sqeSize;
            }
        } catch (ReflectiveOperationException | RuntimeException e) {
            problem = e.toString();
        }
        RING_BUFFER = rb;
        RING_FD = fd;
        SUBMISSION_QUEUE = sq;
        SQ_TAIL = tail;
        SQ_HEAD = head;
        SQ_MASK = mask;
        SQ_ENTRIES = entries;
        SQ_ARRAY_ADDRESS = arr;
        SQ_SUBMIT = submit;
        SELF_CHECK = problem;
    }

    private static Object readStatic(Class<?> c, String name) throws ReflectiveOperationException {
        Field f = c.getDeclaredField(name);
        f.setAccessible(true);
        return f.get(null);
    }

    private final int fd;
    private final Object submissionQueue;
    private final MemorySegment sqes;
    private final int mask;
    private final int entries;
    private final FixedBufferTable buffers;
    private final BitSet bufferGroups = new BitSet();
    /** SQ positions whose bytes 56-63 we set non-zero and must wipe after the kernel consumed them. */
    private int[] dirty = new int[64];
    private int dirtyCount;
    private SilentOps silent;
    private boolean silentTried;

    private NettyRing(IoUringIoHandler handler, int bufferSlots) throws Throwable {
        Object ringBuffer = RING_BUFFER.invoke(handler);
        fd = (int) RING_FD.invoke(ringBuffer);
        submissionQueue = SUBMISSION_QUEUE.invoke(ringBuffer);
        int entries = (int) SQ_ENTRIES.invoke(submissionQueue);
        mask = (int) SQ_MASK.invoke(submissionQueue);
        this.entries = entries;
        long base = (long) SQ_ARRAY_ADDRESS.invoke(submissionQueue);
        sqes = MemorySegment.ofAddress(base).reinterpret((long) entries * IoUringAbi.SQE_SIZE);
        buffers = new FixedBufferTable(fd, bufferSlots);
    }

    /** Start-up check for the gateway: throws, naming what differs, if Netty's internals moved. */
    public static void checkCompatible() {
        if (SELF_CHECK != null) {
            throw new IllegalStateException("Netty io_uring internals differ from 4.2.12.Final, which the ublk "
                    + "queue engine reads (ringBuffer, fd(), SubmissionQueue.head/tail/ringMask): " + SELF_CHECK);
        }
    }

    /** The ring behind a Netty io_uring handler; call on its loop thread. */
    public static NettyRing of(IoUringIoHandler handler, int bufferSlots) {
        checkCompatible();
        return RINGS.computeIfAbsent(handler, h -> {
            try {
                return new NettyRing(h, bufferSlots);
            } catch (Throwable t) {
                throw new IllegalStateException("cannot reach Netty's io_uring ring", t);
            }
        });
    }

    public int fd() {
        return fd;
    }

    /** The sparse fixed-buffer table of this ring, registered on first use. */
    public FixedBufferTable buffers() {
        return buffers;
    }

    /**
     * A provided-buffer group id no other user of this ring holds. Ids start at 0x4000, clear of the low
     * ids a Netty buffer-ring configuration would name.
     */
    public int allocateBufferGroup() {
        int id = bufferGroups.nextClearBit(0);
        if (id >= 0x4000) {
            throw new IllegalStateException("no free provided-buffer group id on this ring");
        }
        bufferGroups.set(id);
        return 0x4000 + id;
    }

    public void releaseBufferGroup(int id) {
        bufferGroups.clear(id - 0x4000);
    }

    /** Size of the submission queue: no link chain may be longer. */
    public int sqEntries() {
        return entries;
    }

    /**
     * Makes room for {@code n} more SQEs without Netty submitting in between: Netty submits by itself
     * when the queue is full, and a submission boundary ends an IOSQE_IO_LINK chain, so the rest of the
     * chain would no longer be ordered behind its head. Submits what is queued if the room is short.
     */
    public void reserveSq(int n) {
        if (n > entries) {
            throw new IllegalArgumentException("a chain of " + n + " SQEs exceeds the " + entries + "-entry ring");
        }
        try {
            int pending = (int) SQ_TAIL.invoke(submissionQueue) - (int) SQ_HEAD.invoke(submissionQueue);
            if (entries - pending < n) {
                SQ_SUBMIT.invoke(submissionQueue);
            }
        } catch (RuntimeException | Error e) {
            throw e;
        } catch (Throwable t) {
            throw new IllegalStateException(t);
        }
    }

    /**
     * Writes {@code value} into bytes 56-63 of the SQE Netty enqueued last (IoUringIoOps cannot reach
     * them, and Netty never clears them, so every SQE we enqueue gets them written, 0 if unused: the
     * kernel reads them as ublksrv_io_cmd.addr or attr_type_mask and rejects stale values with EINVAL).
     * Checks first that the slot holds the operation we expect, so a change in Netty cannot make us
     * patch a foreign entry. Non-zero values are wiped again once the kernel has consumed the entry,
     * so Netty's own later operations in that slot do not inherit them.
     */
    public void writeLastSqeTail(byte expectOpcode, long expectBytes48, long value) {
        int tail = sqTail();
        wipeConsumed();
        long slot = lastSqe(tail, expectOpcode, expectBytes48);
        sqes.set(JAVA_LONG, slot + IoUringAbi.SQE_CMD + 8, value);
        if (value != 0) {
            if (dirtyCount == dirty.length) {
                dirty = java.util.Arrays.copyOf(dirty, dirty.length * 2);
            }
            dirty[dirtyCount++] = tail - 1;
        }
    }

    /**
     * Adds IOSQE_CQE_SKIP_SUCCESS to the SQE Netty enqueued last, which Netty refuses to take itself (see
     * {@link SilentOps}); checked like {@link #writeLastSqeTail}. Netty writes every SQE's flags when it fills the
     * slot, so the flag cannot outlive this entry.
     */
    void skipLastSuccess(byte expectOpcode, long expectBytes48) {
        long slot = lastSqe(sqTail(), expectOpcode, expectBytes48);
        byte flags = sqes.get(JAVA_BYTE, slot + IoUringAbi.SQE_FLAGS);
        sqes.set(JAVA_BYTE, slot + IoUringAbi.SQE_FLAGS, (byte) (flags | IoUringAbi.IOSQE_CQE_SKIP_SUCCESS));
    }

    private int sqTail() {
        try {
            return (int) SQ_TAIL.invoke(submissionQueue);
        } catch (Throwable t) {
            throw new IllegalStateException(t);
        }
    }

    /**
     * The offset of the SQE Netty enqueued last, after checking that it holds the operation we expect, so a change
     * in Netty cannot make us patch a foreign entry.
     */
    private long lastSqe(int tail, byte expectOpcode, long expectBytes48) {
        long slot = (long) ((tail - 1) & mask) * IoUringAbi.SQE_SIZE;
        if (sqes.get(JAVA_BYTE, slot + IoUringAbi.SQE_OPCODE) != expectOpcode
                || sqes.get(JAVA_LONG, slot + IoUringAbi.SQE_CMD) != expectBytes48) {
            throw new IllegalStateException("Netty's last SQE is not the one just submitted; refusing to patch");
        }
        return slot;
    }

    /** The operations of this ring that complete only when they fail; registered on first use, null if it cannot. */
    public SilentOps silentOps(io.netty.channel.IoEventLoop loop) {
        if (!silentTried) {
            silentTried = true;
            silent = SilentOps.register(loop, this);
        }
        return silent;
    }

    /** Zeroes bytes 56-63 of patched entries the kernel has already taken (Netty's head passed them). */
    public void wipeConsumed() {
        if (dirtyCount == 0) {
            return;
        }
        int head;
        try {
            head = (int) SQ_HEAD.invoke(submissionQueue);
        } catch (Throwable t) {
            throw new IllegalStateException(t);
        }
        int kept = 0;
        for (int i = 0; i < dirtyCount; i++) {
            int pos = dirty[i];
            if (head - pos > 0) {
                sqes.set(JAVA_LONG, (long) (pos & mask) * IoUringAbi.SQE_SIZE + IoUringAbi.SQE_CMD + 8, 0L);
            } else {
                dirty[kept++] = pos;
            }
        }
        dirtyCount = kept;
    }
}
