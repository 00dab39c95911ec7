package io.nbdgate.ublk.ublk;

import static io.nbdgate.ublk.ublk.UblkAbi.*;
import static io.nbdgate.ublk.uring.IoUringAbi.OP_READ;
import static io.nbdgate.ublk.uring.IoUringAbi.OP_URING_CMD;
import static io.nbdgate.ublk.uring.IoUringAbi.OP_WRITE;

import io.nbdgate.ublk.uring.Errno;
import io.nbdgate.ublk.uring.NettyRing;
import io.nbdgate.ublk.uring.UringException;
import io.netty.channel.IoEvent;
import io.netty.channel.IoEventLoop;
import io.netty.channel.IoRegistration;
import io.netty.channel.uring.IoUringIoEvent;
import io.netty.channel.uring.IoUringIoHandle;
import io.netty.channel.uring.IoUringIoHandler;
import io.netty.channel.uring.IoUringIoOps;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.concurrent.CompletableFuture;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * One ublk queue served on one Netty io_uring event loop: its FETCH / COMMIT_AND_FETCH commands,
 * the user-copy transfers and the target's own operations all go through that loop's ring, and
 * every completion arrives on that loop's thread. No other thread touches a queue once it runs.
 */
final class QueueEngine implements IoUringIoHandle {
    private static final Logger LOG = LoggerFactory.getLogger(QueueEngine.class);
    /** Netty's 16-bit per-operation data: kind in the top 4 bits, tag (< 4096) below. */
    private static final int KIND_CMD = 0, KIND_TARGET = 1, KIND_COPY_IN = 2, KIND_COPY_OUT = 3;
    private static final byte IN_KERNEL = 0, IN_SERVICE = 1, DONE = 2;
    static final int BUFFER_TABLE_SLOTS = NettyRing.DEFAULT_BUFFER_SLOTS;

    final int devId;
    final int qid;
    final int depth;
    final int maxIoBytes;
    final BufferMode mode;
    /** The device has UBLK_F_USER_COPY: request pages can be read and written through /dev/ublkcN. */
    final boolean userCopy;
    final int charFd;
    private final Target target;
    final IoEventLoop loop;
    private final IoDescriptors descs;
    private final IoRequest[] requests;
    private final byte[] state;
    private final int[] pendingResult;
    private final Arena arena;
    private final MemorySegment buffers;
    int bufferBase = -1;
    private IoRegistration reg;
    private NettyRing ring;
    private int liveTags;
    final CompletableFuture<Void> fetched = new CompletableFuture<>();
    final CompletableFuture<Void> stopped = new CompletableFuture<>();
    // Read by tests and status from other threads; written on the loop only.
    volatile long requestsServed;
    volatile long eventsOffLoop;
    volatile Thread loopThread;

    QueueEngine(int devId, int qid, int depth, int maxIoBytes, BufferMode mode, boolean userCopy, int charFd,
            Target target, IoEventLoop loop) throws UringException {
        if (depth > UBLK_MAX_QUEUE_DEPTH) {
            throw new IllegalArgumentException("queue depth " + depth + " > " + UBLK_MAX_QUEUE_DEPTH);
        }
        this.devId = devId;
        this.qid = qid;
        this.depth = depth;
        this.maxIoBytes = maxIoBytes;
        this.mode = mode;
        this.userCopy = userCopy || mode == BufferMode.USER_COPY;
        this.charFd = charFd;
        this.target = target;
        this.loop = loop;
        this.descs = new IoDescriptors(charFd, qid, depth);
        this.state = new byte[depth];
        this.pendingResult = new int[depth];
        this.requests = new IoRequest[depth];
        if (mode == BufferMode.ZERO_COPY) {
            arena = null;
            buffers = null;
        } else {
            arena = Arena.ofShared();
            buffers = arena.allocate((long) depth * maxIoBytes, 4096);
        }
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
            if (mode == BufferMode.ZERO_COPY) {
                bufferBase = ring.buffers().allocate(depth);
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
        return (short) (kind << 12 | tag);
    }

    private void submitCommand(int tag, int cmdOp, int result) {
        long ioCmd = (qid & 0xffffL) | (tag & 0xffffL) << 16 | (long) result << 32;
        long addr = mode == BufferMode.ZERO_COPY ? autoBufReg(bufferBase + tag, 0) : 0;
        state[tag] = IN_KERNEL;
        reg.submit(new IoUringIoOps(OP_URING_CMD, (byte) 0, (short) 0, charFd, cmdOp & 0xffffffffL, addr, 0, 0,
                data(KIND_CMD, tag), (short) 0, (short) 0, 0, ioCmd));
        // ublksrv_io_cmd.addr (SQE bytes 56-63): the tag's buffer in copy mode, must be 0 otherwise.
        ring.writeLastSqeTail(OP_URING_CMD, ioCmd, mode == BufferMode.COPY ? requests[tag].bufferAddress() : 0);
    }

    void submitTargetIo(int tag, byte opcode, int fd, long off, long addr, int len, int opFlags, int bufIndex) {
        if (!loop.inEventLoop()) {
            throw new IllegalStateException("target I/O must be submitted on the queue's loop thread");
        }
        // Netty's constructor order is (..., data, union4 = buf_index, personality, ...).
        reg.submit(new IoUringIoOps(opcode, (byte) 0, (short) 0, fd, off, addr, len, opFlags,
                data(KIND_TARGET, tag), (short) bufIndex, (short) 0, 0, 0L));
        ring.writeLastSqeTail(opcode, 0L, 0L); // attr_type_mask: never inherit a stale value
    }

    private void submitUserCopy(int kind, IoRequest req, int len) {
        byte op = kind == KIND_COPY_IN ? OP_READ : OP_WRITE;
        reg.submit(new IoUringIoOps(op, (byte) 0, (short) 0, charFd, userCopyOffset(qid, req.tag()),
                req.bufferAddress(), len, 0, data(kind, req.tag()), (short) 0, (short) 0, 0, 0L));
        ring.writeLastSqeTail(op, 0L, 0L);
    }

    @Override
    public void handle(IoRegistration registration, IoEvent ioEvent) {
        if (!loop.inEventLoop()) {
            eventsOffLoop++;
        }
        ring.wipeConsumed();
        IoUringIoEvent event = (IoUringIoEvent) ioEvent;
        int data = event.data() & 0xffff;
        int tag = data & 0xfff;
        int res = event.res();
        if (tag >= depth) {
            return;
        }
        IoRequest req = requests[tag];
        if (res < 0 && data >>> 12 != KIND_CMD) {
            LOG.debug("ublk dev {} queue {} tag {}: {} op {} failed: {}", devId, qid, tag,
                    data >>> 12 == KIND_TARGET ? "target" : "user-copy", event.opcode(), Errno.name(-res));
        }
        switch (data >>> 12) {
            case KIND_CMD -> onCommand(tag, res);
            case KIND_TARGET -> {
                try {
                    target.onIo(req, res);
                } catch (RuntimeException e) {
                    LOG.error("ublk dev {} queue {} tag {}: target failed", devId, qid, tag, e);
                    commit(tag, -Errno.EIO);
                }
            }
            case KIND_COPY_IN -> {
                if (res != req.length()) {
                    commit(tag, res < 0 ? res : -Errno.EIO);
                } else {
                    serve(req);
                }
            }
            case KIND_COPY_OUT -> commit(tag, res < 0 ? res : pendingResult[tag]);
            default -> LOG.warn("ublk dev {} queue {}: completion of unknown kind {}", devId, qid, data >>> 12);
        }
    }

    private void onCommand(int tag, int res) {
        if (res == IO_RES_OK) {
            state[tag] = IN_SERVICE;
            requestsServed++;
            IoRequest req = requests[tag];
            req.load(descs.opFlags(tag), descs.startSector(tag), descs.nrSectors(tag));
            if (mode == BufferMode.USER_COPY && req.op() == IO_OP_WRITE && req.length() > 0) {
                submitUserCopy(KIND_COPY_IN, req, req.length());
            } else {
                serve(req);
            }
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
            pendingResult[tag] = result;
            submitUserCopy(KIND_COPY_OUT, req, result);
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
        submitCommand(tag, U_IO_COMMIT_AND_FETCH_REQ, result);
    }

    private void finish() {
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
