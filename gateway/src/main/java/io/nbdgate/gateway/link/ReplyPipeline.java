package io.nbdgate.gateway.link;

import io.nbdgate.protocol.Command;
import io.nbdgate.protocol.ExportInfo;
import io.nbdgate.protocol.NbdError;
import io.nbdgate.protocol.wire.Completion;
import io.nbdgate.protocol.wire.ReplyReassembler;
import io.nbdgate.uring.Errno;
import io.nbdgate.uring.FixedResources;
import io.nbdgate.uring.UringException;
import java.lang.foreign.MemorySegment;
import java.nio.ByteBuffer;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The reply stream: header bytes into the link's reply buffer (rx), fed to the protocol module's
 * {@link ReplyReassembler}, whose steps say where each reply's data goes ({@link DataLanding} puts it there).
 *
 * <p>While a READ that must be received straight into its pages is out, header bytes are received only as far
 * as {@link ReplyReassembler#safeReadAhead()} allows. While only writes and small READs are out, one receive
 * takes every reply that has arrived ("batching"), and small READs' data is copied into place from rx
 * (staging). An idle link arms a batching receive if it last had company (more than one request in flight at
 * once) and its last READ was small, so that the next burst's first replies come in one receive; after lone
 * requests, or a large READ, it arms a header-only one: a lone READ's data then goes straight into its pages,
 * where staging would cost a copy and take no other reply with it.
 *
 * <p>A READ that must not be staged never meets a batching receive. If one is armed, the READ goes out at once
 * behind an ASYNC_CANCEL of it: the cancel is ahead in the submission queue, and a cancelled receive never runs
 * again, so the READ's reply cannot land in rx. Only a batching receive linked behind a data receive cannot be
 * cancelled (it has not started); the READ is then held back until it ends, which the other reply it waits for
 * ends soon: a lone request never waits for a partner.
 */
final class ReplyPipeline {
    private static final Logger LOG = LoggerFactory.getLogger(ReplyPipeline.class);
    /** Header bytes one batching receive may take (bunches of write replies and small staged READs). */
    static final int HEADER_BATCH_MAX = 64 << 10;

    private final Link link;
    final DataLanding landing;
    ReplyReassembler<Request> reassembler;
    private final Request[] held;
    private int heldCount;
    // At most one receive into rx and one into a request's buffer; the first may be linked behind the second.
    boolean rxInFlight;
    // The receive into rx was posted past the safe read-ahead: until it completes, a READ that cannot be staged is
    // held back and the receive cancelled.
    boolean rxBatching;
    long rxUserData;
    boolean rxCancelSent;
    boolean aheadLinked;
    // The last READ was small enough to stage: with company (mostInFlight) an idle link then arms a batching receive.
    private boolean idleBatching = true;
    // Most requests in flight at once since the link was last idle. 1 means lone requests (queue depth 1): a
    // batching receive would take nothing but the one reply, whose data it then costs a copy to stage.
    private int mostInFlight;
    /** READs in flight whose replies must not (or should not) be staged. */
    int directReads;
    // rx's slot in the ring's fixed-buffer table, -1 while unregistered: the kernel then copies into pinned pages
    // with its memcpy instead of copy_to_user. Kernels before 7.2 refuse RECV with FIXED_BUF; the first reply
    // receive is never linked, so its EINVAL turns this off before anything depends on it.
    int rxIndex = -1;
    // The header-only receive of a link that just went idle, chosen then and posted by a loop task (armIdle):
    // posted from the completion that left the link idle, it would still be in the submission queue once Netty has
    // handled the turn's completions, and Netty submits such a leftover with an io_uring_enter of its own before
    // the one that waits. From a task it goes with the wait, beside the commit: a system call less per request at
    // queue depth 1. It takes header bytes only, so a READ sent before it is posted cannot lose its data to it. A
    // batching receive is posted at once: a READ that must not meet it relies on it being in the kernel before
    // the READ's header goes out, so that the cancel sent ahead of that header finds it.
    private boolean idleArmPending;
    private int idleArmLen;
    private int idleArmFlags;
    private final Runnable armIdle = this::armIdle;
    private long headerReceives;
    private long fixedRxBytes;
    private long readsHeldBack;
    private long batchingCancels;

    ReplyPipeline(Link link) {
        this.link = link;
        this.held = new Request[link.requests.length];
        this.landing = new DataLanding(link, this);
    }

    void start(ExportInfo info) {
        reassembler = new ReplyReassembler<>(info.mode(), link.requests.length);
        registerRx();
    }

    boolean idle() {
        return reassembler == null || reassembler.inFlight() == 0 && heldCount == 0;
    }

    /** Whether exactly one request awaits its reply and none is held back. */
    boolean alone() {
        return reassembler.inFlight() == 1 && heldCount == 0;
    }

    long headerReceives() {
        return headerReceives;
    }

    long fixedRxBytes() {
        return fixedRxBytes;
    }

    long readsHeldBack() {
        return readsHeldBack;
    }

    long batchingCancels() {
        return batchingCancels;
    }

    /** A new request: registered and queued for sending, unless it must wait for a linked batching receive. */
    void accept(Request r) {
        if (r.command() == Command.READ) {
            r.directRead = r.length() > link.options.stageMax() || !canStage(r);
            idleBatching = !r.directRead;
            if (rxBatching && !canStage(r)) {
                if (aheadLinked) {
                    held[heldCount++] = r;
                    readsHeldBack++;
                    return;
                }
                if (!rxCancelSent) {
                    rxCancelSent = true;
                    batchingCancels++;
                    link.count(link.sqes.cancel(rxUserData, OpKind.data(OpKind.CANCEL, 0)));
                }
            }
        }
        send(r);
    }

    /** Registers and queues {@code r}; a READ whose data goes straight into its pages counts as direct from here. */
    private void send(Request r) {
        if (r.directRead) {
            directReads++;
        }
        r.cookie = reassembler.register(r);
        mostInFlight = Math.max(mostInFlight, reassembler.inFlight());
        link.sender.enqueue(r);
    }

    /** Whether reply data for {@code r} that lands in rx can be copied into place. */
    boolean canStage(Request r) {
        return link.options.stageMax() > 0 && r.buffer().copyable();
    }

    /** The link ended: held READs were never sent; they go back unanswered. */
    void abandonHeld() {
        heldCount = 0;
    }

    /** Advances the reply stream until an operation is outstanding; one receive into rx at a time. */
    void pump() {
        ByteBuffer rx = link.rx;
        while (link.state() == LinkState.READY) {
            ReplyReassembler.Step step = reassembler.next(rx);
            switch (step) {
                case NEED_MORE -> {
                    if (!rxInFlight) {
                        receiveHeaderBytes();
                    }
                    return;
                }
                case DATA -> {
                    if (rx.hasRemaining()) {
                        if (!landing.stage()) {
                            return;
                        }
                        continue;
                    }
                    if (!rxInFlight && !landing.dataInFlight) {
                        landing.receive();
                    }
                    return;
                }
                case ZEROES -> {
                    if (landing.zeroRange()) {
                        return;
                    }
                }
                case COMPLETED -> {
                    if (!completed()) {
                        return;
                    }
                }
                case EXTENT -> {
                    // Not requested by this client; the reassembler validated and skipped it.
                }
                case VIOLATION -> {
                    link.fail("protocol violation by " + link.peer + ": " + reassembler.violation());
                    return;
                }
            }
        }
    }

    /** A reply is complete; false if the link ended (the server is shutting down). */
    private boolean completed() {
        Completion<Request> done = reassembler.completed();
        Request r = done.request();
        link.sender.replied(r);
        NbdError e = done.error();
        if (r.directRead) {
            r.directRead = false;
            directReads--;
        }
        if (e == NbdError.ESHUTDOWN) {
            // The server is going away and did not do this one: it goes back unanswered and is sent again.
            if (reassembler.inFlight() == 0) {
                link.fail("the server is shutting down (ESHUTDOWN)");
                return false;
            }
            return true;
        }
        r.replied = true;
        r.result = e == null ? r.successResult() : -e.errno();
        if (e != null && LOG.isDebugEnabled()) {
            LOG.debug("{}: {} failed: {} {}", link.peer, r.command(), e, done.message());
        }
        link.finishIfDone(r);
        if (reassembler.shutdownRequested() && reassembler.inFlight() == 0) {
            link.fail("the server is shutting down (ESHUTDOWN)");
            return false;
        }
        return true;
    }

    /** Receives header bytes into rx: what the reassembler needs, and as far beyond as is safe. */
    private void receiveHeaderBytes() {
        ByteBuffer rx = link.rx;
        int needed = reassembler.bytesNeeded();
        boolean idle = reassembler.inFlight() == 0;
        boolean batch = !idle || idleBatching && mostInFlight > 1;
        if (idle) {
            mostInFlight = 0;
        }
        if (batch && directReads == 0 && needed <= HEADER_BATCH_MAX) {
            // No reply can carry data that must go straight to a buffer: take as many replies as have arrived.
            if (!makeRoom(HEADER_BATCH_MAX)) {
                link.fail("internal error: no room for reply headers");
                return;
            }
            int len = Math.min(HEADER_BATCH_MAX, rx.capacity() - rx.limit());
            rxUserData = receiveIntoRx((byte) 0, len, 0);
            rxInFlight = true;
            rxBatching = true;
            rxCancelSent = false;
            return;
        }
        int ahead = reassembler.safeReadAhead();
        if (ahead > rx.capacity()) {
            link.fail("server message of " + ahead + " bytes exceeds the " + rx.capacity() + "-byte limit");
            return;
        }
        int want = needed - rx.remaining();
        int len = ahead - rx.remaining();
        if (!makeRoom(len)) {
            link.fail("internal error: no room for reply headers");
            return;
        }
        // Without MSG_WAITALL a receive returns what has arrived; the reassembler asks again if it is not enough.
        postHeaderReceive(len, len > want ? 0 : Link.MSG_WAITALL, idle);
        rxInFlight = true;
    }

    /** Posts a header-only receive into rx: now, or an idle link's from a task ({@link #idleArmPending}). */
    private void postHeaderReceive(int len, int msgFlags, boolean idle) {
        if (!idle) {
            receiveIntoRx((byte) 0, len, msgFlags);
            return;
        }
        idleArmPending = true;
        idleArmLen = len;
        idleArmFlags = msgFlags;
        link.loop.execute(armIdle);
    }

    private void armIdle() {
        if (!idleArmPending) {
            return;
        }
        idleArmPending = false;
        if (link.state() == LinkState.READY) {
            receiveIntoRx((byte) 0, idleArmLen, idleArmFlags);
        }
    }

    /** Posts the receive of reply bytes into rx after its limit; through its fixed-buffer slot where it has one. */
    long receiveIntoRx(byte sqeFlags, int len, int msgFlags) {
        long at = link.rxSeg.address() + link.rx.limit();
        return link.recv(sqeFlags, (short) 0, at, len, msgFlags, rxIndex, OpKind.data(OpKind.RX_HEADER, 0));
    }

    /** Makes room for {@code want} bytes after rx's limit: rewinds an emptied rx, or compacts it. */
    boolean makeRoom(int want) {
        ByteBuffer rx = link.rx;
        if (!rx.hasRemaining()) {
            rx.limit(0);
        }
        if (rx.capacity() - rx.limit() >= want) {
            return true;
        }
        rx.compact().flip();
        return rx.capacity() - rx.limit() >= want;
    }

    void onHeaderBytes(int res) {
        headerReceives++;
        rxInFlight = false;
        boolean linked = aheadLinked;
        aheadLinked = false;
        boolean batching = rxBatching;
        rxBatching = false;
        if (link.state() != LinkState.READY) {
            return;
        }
        if (res == -Errno.EINVAL && rxIndex >= 0) {
            // A kernel before 7.2: RECV takes no fixed buffer. Nothing was received; go on with plain receives.
            LOG.debug("{}: RECV into a fixed buffer is not supported here; reply headers use plain receives",
                    link.peer);
            unregisterRx();
            pump();
            return;
        }
        if (res <= 0 && !(res == -Errno.ECANCELED && (linked || batching))) {
            link.fail(res == 0 ? "the server closed the connection" : "receiving a reply header failed: "
                    + Errno.describe(-res));
            return;
        }
        // Cancelled: the data receive it was linked behind came back short (resume that first), or a batching
        // receive made way for a READ.
        if (res > 0) {
            link.rx.limit(link.rx.limit() + res);
            if (rxIndex >= 0) {
                fixedRxBytes += res;
                DataPathStats.receivedIntoFixedRx(res);
            }
        }
        releaseHeld();
        pump();
    }

    /**
     * The receive into rx met a TLS control record and took nothing (kernel TLS; the record is handled): the next
     * receive is chosen as if it had ended, so a READ that must not meet a batching receive is not served by
     * one posted again. A cancel that was sent for it finds nothing.
     */
    void resumeAfterControlRecord() {
        rxInFlight = false;
        aheadLinked = false;
        rxBatching = false;
        releaseHeld();
        pump();
    }

    /** READs held back for a batching receive go out now; the next receive respects their replies. */
    private void releaseHeld() {
        int n = heldCount;
        heldCount = 0;
        for (int i = 0; i < n && link.state() == LinkState.READY; i++) {
            send(held[i]);
            held[i] = null;
        }
    }

    /** Installs rx in a slot of the ring's fixed-buffer table; without a free slot, rx stays plain memory. */
    private void registerRx() {
        int index;
        try {
            index = link.ring.buffers().allocate(1);
        } catch (UringException | IllegalStateException e) {
            LOG.debug("{}: reply buffer not registered: {}", link.peer, e.getMessage());
            return;
        }
        try {
            FixedResources.updateBuffer(link.ring.fd(), index, link.rxSeg);
            rxIndex = index;
        } catch (UringException e) {
            link.ring.buffers().release(index, 1);
            LOG.debug("{}: reply buffer not registered: {}", link.peer, e.getMessage());
        }
    }

    /** Clears rx's slot (in-flight receives keep their own reference to the pages) and frees it. */
    void unregisterRx() {
        if (rxIndex < 0) {
            return;
        }
        int index = rxIndex;
        rxIndex = -1;
        try {
            FixedResources.updateBuffer(link.ring.fd(), index, MemorySegment.NULL);
        } catch (UringException e) {
            LOG.debug("{}: clearing the reply buffer's slot failed: {}", link.peer, e.getMessage());
        }
        link.ring.buffers().release(index, 1);
    }
}
