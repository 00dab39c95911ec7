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
    static final int KIND_CMD = 0, KIND_TARGET = 1, KIND_PREP = 4, KIND_FETCH = 5, KIND_COMMIT = 6,
            KIND_COMMIT_ONE = 7;
    static final byte IN_KERNEL = 0, IN_SERVICE = 1, DONE = 2;
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
    final IoRequest[] requests;
    final byte[] state;
    final Arena arena;
    private final MemorySegment buffers;
    int bufferBase = -1;
    private IoRegistration reg;
    NettyRing ring;
    RingSubmitter sqes;
    private int liveTags;
    /** The batch command set (UBLK_F_BATCH_IO), or null for the per-tag commands. */
    private final BatchCommands batchCommands;
    final CompletableFuture<Void> fetched = new CompletableFuture<>();
    final CompletableFuture<Void> stopped = new CompletableFuture<>();
    // Read by tests and status from other threads; written on the loop only.
    volatile long requestsServed;
    volatile long eventsOffLoop;
    /** Commits of one request that posted no completion (batch commands; see BatchCommands). */
    volatile long loneCommits;
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
        batchCommands = batch ? new BatchCommands(this) : null;
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
                batchCommands.prepare();
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

    static short data(int kind, int tag) {
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
                batchCommands.onPrepared(res);
                return;
            }
            case KIND_FETCH -> {
                batchCommands.onFetched(res, event.flags());
                return;
            }
            case KIND_COMMIT -> {
                batchCommands.onCommitted(tag, res);
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
    void accept(int tag) {
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
            batchCommands.add(tag, result);
        } else {
            submitCommand(tag, U_IO_COMMIT_AND_FETCH_REQ, result);
        }
    }

    void finish() {
        if (stopped.isDone()) {
            return;
        }
        if (batchCommands != null) {
            batchCommands.release();
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
