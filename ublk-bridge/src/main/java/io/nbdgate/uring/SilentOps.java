package io.nbdgate.uring;

import io.netty.channel.IoEvent;
import io.netty.channel.IoEventLoop;
import io.netty.channel.IoRegistration;
import io.netty.channel.uring.IoUringIoEvent;
import io.netty.channel.uring.IoUringIoHandle;
import io.netty.util.concurrent.Future;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Operations that post a completion only when they fail (IOSQE_CQE_SKIP_SUCCESS), for work whose success would
 * only return the loop to its wait. Netty refuses the flag on its own registrations, because a registration is
 * removed (and its handle told) only once every submission has completed; these go through one registration per
 * ring that lives as long as the loop, and {@link NettyRing} sets the flag in the SQE after Netty enqueued it.
 * A failure goes to the listener of its kind (the top 4 bits of the operation's data), or is logged.
 * Loop thread only.
 */
public final class SilentOps implements IoUringIoHandle {
    private static final Logger LOG = LoggerFactory.getLogger(SilentOps.class);

    private final NettyRing ring;
    private final Failure[] onFailure = new Failure[16];

    /** What to do when an operation of a kind fails. */
    public interface Failure {
        void failed(int index, int res);
    }
    private RingSubmitter sqes;

    private SilentOps(NettyRing ring) {
        this.ring = ring;
    }

    /** The silent operations of {@code loop}'s ring; null if it cannot register (the caller then waits for CQEs). */
    static SilentOps register(IoEventLoop loop, NettyRing ring) {
        SilentOps ops = new SilentOps(ring);
        Future<IoRegistration> f = loop.register(ops);
        if (!f.isDone() || !f.isSuccess()) {
            LOG.debug("operations without completions are not available on this loop: {}", f.cause());
            return null;
        }
        ops.sqes = new RingSubmitter(f.getNow(), ring);
        return ops;
    }

    /**
     * Routes failures of operations of {@code kind} to {@code listener} (index, minus errno). One listener per
     * kind and ring.
     */
    public void onFailure(int kind, Failure listener) {
        onFailure[kind] = listener;
    }

    /** A URING_CMD as {@link RingSubmitter#uringCmd}, completing only if it fails. */
    public void uringCmd(int fd, int cmdOp, long addr, short data, long cmd, long cmdTail) {
        sqes.uringCmd((byte) 0, fd, cmdOp, addr, 0, data, (short) 0, cmd, cmdTail);
        ring.skipLastSuccess(IoUringAbi.OP_URING_CMD, cmd);
    }

    @Override
    public void handle(IoRegistration registration, IoEvent ioEvent) {
        IoUringIoEvent e = (IoUringIoEvent) ioEvent;
        int data = e.data() & 0xffff;
        Failure listener = onFailure[UserData.kind(data)];
        if (listener != null) {
            listener.failed(UserData.index(data), e.res());
        } else {
            LOG.error("a ring operation (opcode {}, kind {}, index {}) failed: {}", e.opcode(), UserData.kind(data),
                    UserData.index(data), Errno.name(-e.res()));
        }
    }

    @Override
    public void close() {
        // The loop is shutting down; the ring and every operation in it go with it.
    }
}
