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

    /**
     * The kind whose index is a slot of {@link #attach}: failures of one user among many on the ring (a link per
     * device). Kept out of the kinds {@link #onFailure} routes.
     */
    public static final int KIND_ATTACHED = 15;

    private final NettyRing ring;
    private final Failure[] onFailure = new Failure[16];
    private final Failure[] attached = new Failure[UserData.MAX_INDEX];
    // Slots are handed out round-robin: a failure that comes after its user detached finds the slot empty, not a
    // newcomer, unless thousands of users attached in between.
    private int nextSlot;

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
        if (kind == KIND_ATTACHED) {
            throw new IllegalArgumentException("kind " + kind + " is the attached users'");
        }
        onFailure[kind] = listener;
    }

    /**
     * Gives {@code listener} a slot of its own: operations submitted with its {@link #attachedData} report their
     * failures to it alone. Returns the slot, -1 if all are taken (the caller then waits for completions).
     */
    public int attach(Failure listener) {
        for (int i = 0; i < attached.length; i++) {
            int slot = (nextSlot + i) % attached.length;
            if (attached[slot] == null) {
                attached[slot] = listener;
                nextSlot = (slot + 1) % attached.length;
                return slot;
            }
        }
        return -1;
    }

    /** Frees {@code slot}; failures that still come for it are logged at debug level. */
    public void detach(int slot) {
        attached[slot] = null;
    }

    /** The operation data that routes a failure to the listener of {@code slot}. */
    public static short attachedData(int slot) {
        return UserData.encode(KIND_ATTACHED, slot);
    }

    /** A URING_CMD as {@link RingSubmitter#uringCmd}, completing only if it fails. */
    public void uringCmd(int fd, int cmdOp, long addr, short data, long cmd, long cmdTail) {
        sqes.uringCmd((byte) 0, fd, cmdOp, addr, 0, data, (short) 0, cmd, cmdTail);
        ring.skipLastSuccess(IoUringAbi.OP_URING_CMD, cmd);
    }

    /**
     * A SEND as {@link RingSubmitter#send}, completing only if it fails. With MSG_DONTWAIT in {@code msgFlags} the
     * kernel tries it once, while it takes the submission, and never waits for room: by the time the loop sees any
     * later completion, the send has either gone out whole or its failure is ahead of that completion.
     */
    public void send(byte sqeFlags, int fd, long addr, int len, int msgFlags, int bufIndex, short data) {
        sqes.send(sqeFlags, fd, addr, len, msgFlags, bufIndex, data);
        ring.skipLastSuccess(IoUringAbi.OP_SEND, 0);
    }

    @Override
    public void handle(IoRegistration registration, IoEvent ioEvent) {
        IoUringIoEvent e = (IoUringIoEvent) ioEvent;
        int data = e.data() & 0xffff;
        if (UserData.kind(data) == KIND_ATTACHED) {
            Failure user = attached[UserData.index(data)];
            if (user != null) {
                user.failed(UserData.index(data), e.res());
            } else {
                LOG.debug("a ring operation (opcode {}) of a user gone since failed: {}", e.opcode(),
                        Errno.name(-e.res()));
            }
            return;
        }
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
