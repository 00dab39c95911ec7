package io.nbdgate.ublk;

import static io.nbdgate.ublk.UblkAbi.*;
import static io.nbdgate.uring.IoUringAbi.CQE_BUFFER_SHIFT;
import static io.nbdgate.uring.IoUringAbi.CQE_F_BUFFER;
import static io.nbdgate.uring.IoUringAbi.CQE_F_MORE;
import static io.nbdgate.uring.IoUringAbi.IOSQE_BUFFER_SELECT;
import static io.nbdgate.uring.IoUringAbi.URING_CMD_MULTISHOT;
import static io.nbdgate.uring.IoUringAbi.OP_URING_CMD;

import io.nbdgate.uring.Errno;
import io.nbdgate.uring.LinuxCalls;
import io.nbdgate.uring.NettyRing;
import io.nbdgate.uring.ProvidedBufferRing;
import io.nbdgate.uring.RingSubmitter;
import io.nbdgate.uring.UserData;
import io.nbdgate.uring.UringException;
import io.netty.channel.IoEvent;
import io.netty.channel.IoEventLoop;
import io.netty.channel.IoRegistration;
import io.netty.channel.uring.IoUringIoEvent;
import io.netty.channel.uring.IoUringIoHandle;
import io.netty.channel.uring.IoUringIoHandler;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.Arrays;
import java.util.concurrent.CompletableFuture;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * One ublk queue served on one Netty io_uring event loop: its ublk commands and the target's own
 * operations go through that loop's ring, the user-copy transfers are system calls on that loop's
 * thread, and every completion arrives on it. No other thread touches a queue once it runs.
 *
 * <p>Two command sets. Per tag (every kernel): one FETCH_REQ per tag, and each completion is a
 * COMMIT_AND_FETCH_REQ of its own, so every request costs a command and a CQE. Batch
 * (UBLK_F_BATCH_IO, Linux 7.0+): PREP_IO_CMDS arms every tag once, one multishot FETCH_IO_CMDS
 * delivers the tags of new requests many per CQE into a provided buffer ring, and the completions of
 * one loop pass leave together in one COMMIT_IO_CMDS, which also re-arms their tags.
 */
final class QueueEngine implements IoUringIoHandle {
    private static final Logger LOG = LoggerFactory.getLogger(QueueEngine.class);
    /** Netty's 16-bit per-operation data: kind in the top 4 bits, tag (< 4096) below. */
    private static final int KIND_CMD = 0, KIND_TARGET = 1, KIND_PREP = 4,
            KIND_FETCH = 5, KIND_COMMIT = 6;
    private static final int ENOBUFS = 105;
    /** The kernel writes at most 128 tags into one fetch buffer (MAX_NR_TAG in ublk_drv.c). */
    private static final int TAGS_PER_FETCH = 128;
    private static final byte IN_KERNEL = 0, IN_SERVICE = 1, DONE = 2;
    static final int BUFFER_TABLE_SLOTS = NettyRing.DEFAULT_BUFFER_SLOTS;

    final int devId;
    final int qid;
    final int depth;
    final int maxIoBytes;
    final BufferMode mode;
    /** The device has UBLK_F_USER_COPY: request pages can be read and written through /dev/ublkcN. */
    final boolean userCopy;
    /** UBLK_F_BATCH_IO: PREP / multishot FETCH / COMMIT_IO_CMDS instead of the per-tag commands. */
    final boolean batch;
    final int charFd;
    private final Target target;
    final IoEventLoop loop;
    private final IoDescriptors descs;
    private final IoRequest[] requests;
    private final byte[] state;
    private final Arena arena;
    private final MemorySegment buffers;
    int bufferBase = -1;
    private IoRegistration reg;
    private NettyRing ring;
    private RingSubmitter sqes;
    private int liveTags;
    // Batch mode only (all on the loop thread).
    private final int elemBytes;
    private MemorySegment prepElems;
    private ProvidedBufferRing tagRing;
    private int bufferGroup = -1;
    private MemorySegment[] commitBufs = new MemorySegment[0];
    private int[] commitStart = new int[0]; // elements the kernel already took
    private int[] commitEnd = new int[0];   // elements written
    private int[] commitFree = new int[0];
    private int commitFreeCount;
    private int currentCommit = -1;
    private boolean commitFlushQueued;
    private int commitsInFlight;
    private int inService;
    private boolean fetchEnded;
    private final int[] fetchedTags = new int[TAGS_PER_FETCH];
    private final Runnable flushCommits = this::flushCommits;
    final CompletableFuture<Void> fetched = new CompletableFuture<>();
    final CompletableFuture<Void> stopped = new CompletableFuture<>();
    // Read by tests and status from other threads; written on the loop only.
    volatile long requestsServed;
    volatile long eventsOffLoop;
    volatile Thread loopThread;

    QueueEngine(int devId, int qid, int depth, int maxIoBytes, BufferMode mode, boolean userCopy, boolean batch,
            int charFd, Target target, IoEventLoop loop) throws UringException {
        if (depth > UBLK_MAX_QUEUE_DEPTH) {
            throw new IllegalArgumentException("queue depth " + depth + " > " + UBLK_MAX_QUEUE_DEPTH);
        }
        this.devId = devId;
        this.qid = qid;
        this.depth = depth;
        this.maxIoBytes = maxIoBytes;
        this.mode = mode;
        this.userCopy = userCopy || mode == BufferMode.USER_COPY;
        this.batch = batch;
        this.elemBytes = mode == BufferMode.COPY ? 16 : 8; // COPY devices pass each tag's buffer (HAS_BUF_ADDR)
        this.charFd = charFd;
        this.target = target;
        this.loop = loop;
        this.descs = new IoDescriptors(charFd, qid, depth);
        this.state = new byte[depth];
        this.requests = new IoRequest[depth];
        arena = mode == BufferMode.ZERO_COPY && !batch ? null : Arena.ofShared();
        buffers = mode == BufferMode.ZERO_COPY ? null : arena.allocate((long) depth * maxIoBytes, 4096);
        for (int tag = 0; tag < depth; tag++) {
            MemorySegment b = buffers == null ? null : buffers.asSlice((long) tag * maxIoBytes, maxIoBytes);
            requests[tag] = new IoRequest(this, tag, b);
        }
    }

    /** Registers with the loop and, on its thread, fetches every tag. */
    CompletableFuture<Void> start() {
        loop.register(this).addListener(f -> {
            if (!f.isSuccess()) {
                fetched.completeExceptionally(f.cause());
                return;
            }
            IoRegistration r = (IoRegistration) f.getNow();
            if (loop.inEventLoop()) {
                begin(r);
            } else {
                loop.execute(() -> begin(r));
            }
        });
        return fetched;
    }

    private void begin(IoRegistration r) {
        try {
            loopThread = Thread.currentThread();
            reg = r;
            IoUringIoHandler handler = r.attachment();
            ring = NettyRing.of(handler, BUFFER_TABLE_SLOTS);
            sqes = new RingSubmitter(r, ring);
            if (mode == BufferMode.ZERO_COPY) {
                bufferBase = ring.buffers().allocate(depth);
            }
            if (batch) {
                prepare();
                return; // fetched completes when the kernel took the PREP
            }
            liveTags = depth;
            for (int tag = 0; tag < depth; tag++) {
                submitCommand(tag, U_IO_FETCH_REQ, 0);
            }
            fetched.complete(null);
        } catch (Throwable t) {
            fetched.completeExceptionally(t);
        }
    }

    private static short data(int kind, int tag) {
        return UserData.encode(kind, tag);
    }

    private void submitCommand(int tag, int cmdOp, int result) {
        long ioCmd = (qid & 0xffffL) | (tag & 0xffffL) << 16 | (long) result << 32;
        long addr = mode == BufferMode.ZERO_COPY ? autoBufReg(bufferBase + tag, 0) : 0;
        state[tag] = IN_KERNEL;
        // ublksrv_io_cmd.addr (SQE bytes 56-63): the tag's buffer in copy mode, must be 0 otherwise.
        sqes.uringCmd((byte) 0, charFd, cmdOp, addr, 0, data(KIND_CMD, tag), (short) 0, ioCmd,
                mode == BufferMode.COPY ? requests[tag].bufferAddress() : 0);
    }

    void submitTargetIo(int tag, byte opcode, int fd, long off, long addr, int len, int opFlags, int bufIndex) {
        if (!loop.inEventLoop()) {
            throw new IllegalStateException("target I/O must be submitted on the queue's loop thread");
        }
        sqes.io(opcode, fd, off, addr, len, opFlags, bufIndex, data(KIND_TARGET, tag));
    }

    /**
     * User copy between the request's pages and the tag's memory: a pread or pwrite on /dev/ublkcN at the
     * tag's offset, on the loop thread. ublk copies between two kernel buffers and never blocks, so a ring
     * operation would also run inline (the file is O_NONBLOCK) and only add a CQE and a dispatch.
     * Returns the bytes copied or minus errno.
     */
    private long userCopy(boolean intoMemory, IoRequest req, int len) {
        long off = userCopyOffset(qid, req.tag());
        return intoMemory ? LinuxCalls.pread(charFd, req.bufferAddress(), len, off)
                : LinuxCalls.pwrite(charFd, req.bufferAddress(), len, off);
    }

    @Override
    public void handle(IoRegistration registration, IoEvent ioEvent) {
        if (!loop.inEventLoop()) {
            eventsOffLoop++;
        }
        ring.wipeConsumed();
        IoUringIoEvent event = (IoUringIoEvent) ioEvent;
        int data = event.data() & 0xffff;
        int tag = UserData.index(data);
        int res = event.res();
        switch (UserData.kind(data)) {
            case KIND_PREP -> {
                onPrepared(res);
                return;
            }
            case KIND_FETCH -> {
                onFetched(res, event.flags());
                return;
            }
            case KIND_COMMIT -> {
                onCommitted(tag, res);
                return;
            }
            default -> { }
        }
        if (tag >= depth) {
            return;
        }
        IoRequest req = requests[tag];
        if (res < 0 && UserData.kind(data) != KIND_CMD) {
            LOG.debug("ublk dev {} queue {} tag {}: target op {} failed: {}", devId, qid, tag, event.opcode(),
                    Errno.name(-res));
        }
        switch (UserData.kind(data)) {
            case KIND_CMD -> onCommand(tag, res);
            case KIND_TARGET -> {
                try {
                    target.onIo(req, res);
                } catch (RuntimeException e) {
                    LOG.error("ublk dev {} queue {} tag {}: target failed", devId, qid, tag, e);
                    commit(tag, -Errno.EIO);
                }
            }
            default -> LOG.warn("ublk dev {} queue {}: completion of unknown kind {}", devId, qid, UserData.kind(data));
        }
    }

    private void onCommand(int tag, int res) {
        if (res == IO_RES_OK) {
            accept(tag);
            return;
        }
        // ABORT is the kernel handing the tag back (STOP_DEV, QUIESCE_DEV): a clean stop, not an error.
        if (res != IO_RES_ABORT) {
            LOG.warn("ublk dev {} queue {} tag {}: io command failed: {} ({})", devId, qid, tag,
                    res < 0 ? Errno.name(-res) : "result", res);
        }
        state[tag] = DONE;
        if (--liveTags == 0) {
            finish();
        }
    }

    /** The kernel handed request {@code tag} over: its descriptor is in the mmap'd array. */
    private void accept(int tag) {
        state[tag] = IN_SERVICE;
        requestsServed++;
        IoRequest req = requests[tag];
        req.load(descs.opFlags(tag), descs.startSector(tag), descs.nrSectors(tag));
        if (mode == BufferMode.USER_COPY && req.op() == IO_OP_WRITE && req.length() > 0) {
            long r = userCopy(true, req, req.length());
            if (r != req.length()) {
                commit(tag, r < 0 ? (int) r : -Errno.EIO);
                return;
            }
        }
        serve(req);
    }

    private void serve(IoRequest req) {
        try {
            target.serve(req);
        } catch (RuntimeException e) {
            LOG.error("ublk dev {} queue {} tag {}: target failed", devId, qid, req.tag(), e);
            commit(req.tag(), -Errno.EIO);
        }
    }

    void complete(IoRequest req, int result) {
        if (!loop.inEventLoop()) {
            // A target finishing elsewhere: the kernel only takes a queue's commands from its daemon thread.
            loop.execute(() -> complete(req, result));
            return;
        }
        int tag = req.tag();
        if (state[tag] != IN_SERVICE) {
            throw new IllegalStateException("tag " + tag + " completed twice or not in service");
        }
        if (mode == BufferMode.USER_COPY && req.op() == IO_OP_READ && result > 0) {
            long w = userCopy(false, req, result);
            commit(tag, w < 0 ? (int) w : w == result ? result : -Errno.EIO);
        } else {
            commit(tag, result);
        }
    }

    private void commit(int tag, int result) {
        if (result < 0) {
            IoRequest r = requests[tag];
            LOG.warn("ublk dev {} queue {} tag {}: op {} at {} +{} failed: {} ({})", devId, qid, tag, r.op(),
                    r.offset(), r.length(), Errno.name(-result), result);
        }
        if (batch) {
            addCommit(tag, result);
        } else {
            submitCommand(tag, U_IO_COMMIT_AND_FETCH_REQ, result);
        }
    }

    // ---- batch mode ----

    /** Arms every tag with one PREP_IO_CMDS and registers the ring the multishot FETCH writes tags into. */
    private void prepare() throws UringException {
        bufferGroup = ring.allocateBufferGroup();
        // One buffer per CQE the kernel may post before this loop reads any; each CQE carries at least one
        // of the at most depth tags in flight, so depth buffers are always enough (and fewer only cost a
        // re-armed FETCH: the kernel keeps the tags queued and ends the FETCH with ENOBUFS).
        int entries = depth <= 1 ? 1 : Integer.highestOneBit(depth - 1) << 1;
        tagRing = new ProvidedBufferRing(ring.fd(), bufferGroup, entries, Math.min(depth, TAGS_PER_FETCH) * 2, arena);
        prepElems = arena.allocate((long) depth * elemBytes, 8);
        for (int tag = 0; tag < depth; tag++) {
            writeElem(prepElems, tag, tag, 0);
        }
        long header = batchHeader(qid, batchFlags(), depth, elemBytes);
        sqes.uringCmd((byte) 0, charFd, U_IO_PREP_IO_CMDS, prepElems.address(), 0, data(KIND_PREP, 0), (short) 0,
                header, 0);
    }

    private int batchFlags() {
        return mode == BufferMode.COPY ? BATCH_F_HAS_BUF_ADDR : 0;
    }

    /** Element {@code i} of a PREP or COMMIT list: tag, its fixed-buffer index, result, its buffer in copy mode. */
    private void writeElem(MemorySegment list, int i, int tag, int result) {
        long off = (long) i * elemBytes;
        list.set(ValueLayout.JAVA_SHORT, off, (short) tag);
        // One fixed index per tag, the same at PREP and at every COMMIT: kernels differ on whether a commit
        // unregisters the old or the new index, and with one index per tag both are the same.
        list.set(ValueLayout.JAVA_SHORT, off + 2, (short) (mode == BufferMode.ZERO_COPY ? bufferBase + tag : 0));
        list.set(ValueLayout.JAVA_INT, off + 4, result);
        if (elemBytes == 16) {
            list.set(ValueLayout.JAVA_LONG, off + 8, requests[tag].bufferAddress());
        }
    }

    private void onPrepared(int res) {
        if (res != 0) {
            fetched.completeExceptionally(new IllegalStateException("ublk dev " + devId + " queue " + qid
                    + ": the kernel refused PREP_IO_CMDS: " + Errno.name(-res)));
            fetchEnded = true;
            finish();
            return;
        }
        fetched.complete(null);
        armFetch();
    }

    private void armFetch() {
        long header = batchHeader(qid, 0, 0, 2);
        sqes.uringCmd(IOSQE_BUFFER_SELECT, charFd, U_IO_FETCH_IO_CMDS, 0, URING_CMD_MULTISHOT, data(KIND_FETCH, 0),
                (short) bufferGroup, header, 0);
    }

    /** A CQE of the multishot FETCH: res bytes of u16 tags in buffer (flags >> 16), or its end. */
    private void onFetched(int res, int flags) {
        if (res > 0 && (flags & CQE_F_BUFFER) != 0) {
            int bid = flags >>> CQE_BUFFER_SHIFT;
            int n = Math.min(res / 2, TAGS_PER_FETCH);
            for (int i = 0; i < n; i++) {
                fetchedTags[i] = tagRing.readShort(bid, i) & 0xffff;
            }
            tagRing.recycle(bid);
            for (int i = 0; i < n; i++) {
                int tag = fetchedTags[i];
                if (tag >= depth || state[tag] == IN_SERVICE) {
                    LOG.error("ublk dev {} queue {}: FETCH delivered tag {}, which is not the kernel's", devId, qid, tag);
                    continue;
                }
                inService++;
                accept(tag);
            }
        }
        if ((flags & CQE_F_MORE) != 0) {
            return;
        }
        if (res >= 0 || res == -ENOBUFS) {
            armFetch(); // the buffers ran out or the CQ was full: the kernel keeps the tags queued until then
            return;
        }
        // ABORT is the kernel ending the FETCH at STOP_DEV: a clean stop, not an error.
        if (res != IO_RES_ABORT) {
            LOG.warn("ublk dev {} queue {}: FETCH_IO_CMDS failed: {}", devId, qid, Errno.name(-res));
        }
        fetchEnded = true;
        finishWhenIdle();
    }

    private void addCommit(int tag, int result) {
        state[tag] = IN_KERNEL;
        inService--;
        if (currentCommit < 0) {
            currentCommit = takeCommitBuffer();
        }
        int b = currentCommit;
        writeElem(commitBufs[b], commitEnd[b]++, tag, result);
        if (!commitFlushQueued) {
            // Netty runs tasks after it has handled every completion of a pass: one COMMIT takes them all.
            commitFlushQueued = true;
            loop.execute(flushCommits);
        }
    }

    private int takeCommitBuffer() {
        if (commitFreeCount == 0) {
            int n = commitBufs.length;
            if (n >= depth) {
                throw new IllegalStateException("more commit lists than tags in flight"); // cannot happen
            }
            int grown = Math.min(depth, Math.max(2, n * 2));
            commitBufs = Arrays.copyOf(commitBufs, grown);
            commitStart = Arrays.copyOf(commitStart, grown);
            commitEnd = Arrays.copyOf(commitEnd, grown);
            commitFree = Arrays.copyOf(commitFree, grown);
            for (int i = grown - 1; i >= n; i--) {
                commitBufs[i] = arena.allocate((long) depth * elemBytes, 8);
                commitFree[commitFreeCount++] = i;
            }
        }
        return commitFree[--commitFreeCount];
    }

    private void flushCommits() {
        commitFlushQueued = false;
        int b = currentCommit;
        if (b < 0) {
            return;
        }
        currentCommit = -1;
        submitCommit(b);
    }

    private void submitCommit(int b) {
        int nr = commitEnd[b] - commitStart[b];
        long header = batchHeader(qid, batchFlags(), nr, elemBytes);
        sqes.uringCmd((byte) 0, charFd, U_IO_COMMIT_IO_CMDS, commitBufs[b].address() + (long) commitStart[b] * elemBytes,
                0, data(KIND_COMMIT, b), (short) 0, header, 0);
        commitsInFlight++;
    }

    /** res: bytes of elements the kernel took, or the error of the first one when it took none. */
    private void onCommitted(int b, int res) {
        commitsInFlight--;
        int taken = res / elemBytes;
        if (res < 0) {
            long off = (long) commitStart[b] * elemBytes;
            LOG.error("ublk dev {} queue {}: COMMIT_IO_CMDS refused tag {}: {}", devId, qid,
                    commitBufs[b].get(ValueLayout.JAVA_SHORT, off) & 0xffff, Errno.name(-res));
            taken = 1; // skip the element the kernel refused, commit the rest
        }
        commitStart[b] += taken;
        if (commitStart[b] < commitEnd[b]) {
            submitCommit(b); // a partial commit: the rest again
            return;
        }
        commitStart[b] = commitEnd[b] = 0;
        commitFree[commitFreeCount++] = b;
        finishWhenIdle();
    }

    /** Once the FETCH ended: stops when no request is in service and every commit came back. */
    private void finishWhenIdle() {
        if (fetchEnded && inService == 0 && commitsInFlight == 0 && currentCommit < 0) {
            finish();
        }
    }

    private void finish() {
        if (stopped.isDone()) {
            return;
        }
        if (tagRing != null) {
            try {
                tagRing.unregister();
            } catch (UringException e) {
                LOG.warn("ublk dev {} queue {}: {}", devId, qid, e.getMessage());
            }
            ring.releaseBufferGroup(bufferGroup);
            tagRing = null;
        }
        if (bufferBase >= 0) {
            ring.buffers().release(bufferBase, depth);
            bufferBase = -1;
        }
        reg.cancel();
        stopped.complete(null);
    }

    /** Frees memory once the queue is stopped (or never started). */
    void release() {
        descs.close();
        if (arena != null) {
            arena.close();
        }
    }

    @Override
    public void close() {
        // Netty calls this when the loop shuts down; the kernel cancels our commands with the ring.
        stopped.complete(null);
    }
}
