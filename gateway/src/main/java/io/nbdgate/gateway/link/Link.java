package io.nbdgate.gateway.link;

import io.netty.channel.IoEvent;
import io.netty.channel.IoEventLoop;
import io.netty.channel.IoRegistration;
import io.netty.channel.uring.IoUringIoEvent;
import io.netty.channel.uring.IoUringIoHandle;
import io.nbdgate.gateway.device.QuietUringTransport;
import io.nbdgate.gateway.tls.TlsRelay;
import io.nbdgate.protocol.ExportInfo;
import io.nbdgate.protocol.client.HandshakeConfig;
import io.nbdgate.uring.Errno;
import io.nbdgate.uring.LinuxCalls;
import io.nbdgate.uring.NettyRing;
import io.nbdgate.uring.RingSubmitter;
import io.nbdgate.uring.SilentOps;
import io.nbdgate.uring.UserData;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.net.SocketAddress;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.function.LongSupplier;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * One NBD connection whose every socket operation — socket, connect, handshake, requests, replies — is an
 * io_uring operation on the event loop of the ublk queue it serves. Sharing that loop's ring, request data
 * moves between the kernel's request pages and the socket with SEND_ZC and RECV on the fixed buffer ublk
 * registered for the tag: Java never touches a data byte.
 *
 * <p>This class is the link's lifecycle ({@link LinkState}) and the dispatch of its completions; the work is
 * in its parts: {@link HandshakeDriver}, {@link SendPipeline}, {@link ReplyPipeline} with {@link DataLanding},
 * and {@link Deadlines}. A link never fails a request: when it ends, the requests it did not answer go back
 * to its {@link LinkOwner}, which may send them again on the next link. Loop thread only, except
 * {@link #open} and {@link #closeAsync}.
 */
public final class Link implements IoUringIoHandle {
    private static final Logger LOG = LoggerFactory.getLogger(Link.class);

    private static final int SHUT_RDWR = 2;
    static final int MSG_WAITALL = 0x100, MSG_NOSIGNAL = 0x4000, MSG_MORE = 0x8000;
    static final int MAX_TAGS = UserData.MAX_INDEX;
    private static final int RX_CAPACITY = 1 << 20; // the largest handshake message we accept

    final IoEventLoop loop;
    final SocketAddress address;
    /** The server's address for messages and the log. */
    final String peer;
    final LinkOptions options;
    final Request[] requests;
    private final LinkOwner owner;
    /** The server is on this host: SEND_ZC pages would be copied on local delivery anyway. */
    final boolean localPeer;
    final Arena arena = Arena.ofShared();
    final MemorySegment rxSeg;
    final ByteBuffer rx;
    final MemorySegment txSeg;
    final ByteBuffer tx;
    final MemorySegment one;
    private final Connector connector;
    final HandshakeDriver handshake;
    final SendPipeline sender;
    final ReplyPipeline replies;
    final Deadlines deadlines;
    private final CompletableFuture<Void> closed = new CompletableFuture<>();

    private IoRegistration reg;
    RingSubmitter sqes;
    NettyRing ring;
    /** The ring's operations without a completion on success, and this link's slot there; null / -1 without. */
    SilentOps silent;
    int silentSlot = -1;
    /** The socket's send buffer once connected (SO_SNDBUF; the kernel only grows it while the link lives). */
    int sendBuffer;
    /** The loop's turns (QuietUringTransport), null on a loop that does not count them. */
    final LongSupplier turns;
    LinkState state = LinkState.CONNECTING;
    int fd = -1;
    final InFlightOps inFlight = new InFlightOps();
    private boolean closeSent;
    private ExportInfo export;
    /** The socket took a setsockopt through the ring (TCP on 6.7+): large data receives wait with SO_RCVLOWAT. */
    boolean socketCommands;
    /** The kernel's TLS on this link's socket (after STARTTLS); null in plaintext and with a relay. */
    LinkTls tls;
    /** TLS in userspace between {@link #fd} and the server; null in plaintext and with kernel TLS. */
    TlsRelay relay;
    /** "kernel TLS 1.3 ..." or "userspace TLS 1.3 ..."; null in plaintext. */
    String tlsStatus;

    private Link(IoEventLoop loop, SocketAddress address, HandshakeConfig config, LinkOptions options,
                 Request[] requests, LinkOwner owner) {
        if (requests.length < 1 || requests.length > MAX_TAGS) {
            throw new IllegalArgumentException("depth " + requests.length + " outside 1.." + MAX_TAGS);
        }
        this.loop = loop;
        this.address = address;
        this.peer = SocketAddresses.describe(address);
        this.options = options;
        this.requests = requests;
        this.owner = owner;
        this.localPeer = SocketAddresses.onThisHost(address);
        this.turns = QuietUringTransport.turnsOf(loop);
        rxSeg = arena.allocate(RX_CAPACITY, 4096);
        rx = rxSeg.asByteBuffer().order(ByteOrder.BIG_ENDIAN);
        rx.limit(0);
        int txCapacity = SendPipeline.headerBufferSize(requests.length);
        txSeg = arena.allocate(txCapacity, 4096);
        tx = txSeg.asByteBuffer().order(ByteOrder.BIG_ENDIAN);
        connector = new Connector(this, SocketAddresses.encode(arena, address));
        one = arena.allocate(ValueLayout.JAVA_INT);
        one.set(ValueLayout.JAVA_INT, 0, 1);
        handshake = new HandshakeDriver(this, config);
        sender = new SendPipeline(this);
        replies = new ReplyPipeline(this);
        deadlines = new Deadlines(this);
    }

    /**
     * Starts a link to {@code address} on {@code loop}: connect and handshake, then {@link LinkOwner#ready}, or
     * {@link LinkOwner#down} with a one-line reason. {@code requests} are the queue's records, indexed by tag.
     */
    public static Link open(IoEventLoop loop, SocketAddress address, HandshakeConfig config, LinkOptions options,
                            Request[] requests, LinkOwner owner) {
        Link link = new Link(loop, address, config, options, requests, owner);
        loop.register(link).addListener(f -> link.onLoop(() -> {
            if (f.isSuccess()) {
                link.begin((IoRegistration) f.getNow());
                return;
            }
            link.arena.close();
            link.state = LinkState.CLOSED;
            owner.down(link, "cannot register on the event loop: " + f.cause());
            owner.closed(link, List.of());
            link.closed.complete(null);
        }));
        return link;
    }

    void onLoop(Runnable task) {
        if (loop.inEventLoop()) {
            task.run();
        } else {
            loop.execute(task);
        }
    }

    public LinkState state() {
        return state;
    }

    /** What the handshake learned; null before READY. */
    public ExportInfo export() {
        return export;
    }

    public SocketAddress address() {
        return address;
    }

    /** The server's address for messages and the log. */
    public String peer() {
        return peer;
    }

    /** What this link's adaptive parts did (tests and comparisons). */
    public LinkCounters counters() {
        return new LinkCounters(this);
    }

    /** Where TLS runs and what it is ("kernel TLSv1.3 TLS_AES_128_GCM_SHA256 CN=..."); null in plaintext. */
    public String tlsStatus() {
        return tlsStatus;
    }

    // ---------------------------------------------------------------- connecting

    private void begin(IoRegistration r) {
        reg = r;
        ring = NettyRing.of(r.attachment(), NettyRing.DEFAULT_BUFFER_SLOTS);
        sqes = new RingSubmitter(r, ring);
        silent = ring.silentOps(loop);
        if (silent != null) {
            silentSlot = silent.attach((slot, res) -> silentSendFailed(res));
        }
        deadlines.startConnect();
        connector.start();
    }

    /** The handshake is done: transmission begins. */
    void handshakeDone(ExportInfo info) {
        export = info;
        state = LinkState.READY;
        sendBuffer = Math.max(0, LinuxCalls.getsockoptInt(fd, LinuxCalls.SOL_SOCKET, LinuxCalls.SO_SNDBUF));
        deadlines.startIo();
        tx.clear();
        sender.start(info.mode());
        replies.start(info);
        LOG.debug("connected to {}: export '{}' size {} mode {}", peer, info.name(), info.size(),
                info.mode());
        owner.ready(this, info);
        if (state == LinkState.READY) {
            replies.pump();
        }
    }

    // ---------------------------------------------------------------- requests

    /** Sends {@code r} (its fields and buffer filled in). READY only; loop thread only. */
    public void submit(Request r) {
        submit(r, System.nanoTime());
    }

    /** {@link #submit(Request)} with the clock the caller already read: its io-timeout runs from {@code nowNanos}. */
    public void submit(Request r, long nowNanos) {
        if (state != LinkState.READY) {
            throw new IllegalStateException("link is " + state + ", not READY");
        }
        r.resetForLink();
        r.phase = Request.Phase.ON_LINK;
        r.startNanos = nowNanos;
        replies.accept(r);
    }

    /** Whether nothing is queued, being sent or awaiting a reply. */
    boolean idle() {
        return sender.idle() && replies.idle();
    }

    /** A request got its reply; it completes once the kernel let go of its pages. */
    void finishIfDone(Request r) {
        if (r.phase == Request.Phase.ON_LINK && r.replied && r.pendingOps == 0) {
            r.phase = Request.Phase.FREE;
            owner.completed(r);
        }
    }

    // ---------------------------------------------------------------- completions

    @Override
    public void handle(IoRegistration registration, IoEvent ioEvent) {
        IoUringIoEvent e = (IoUringIoEvent) ioEvent;
        int res = e.res();
        int flags = e.flags();
        int kind = UserData.kind(e.data());
        int tag = UserData.index(e.data());
        inFlight.completed(kind, flags);
        try {
            dispatch(kind, tag, res, flags);
        } catch (RuntimeException | LinkageError bug) {
            // A bug (or a mismatched jar) must end this link (the session reconnects), not escape into the loop
            // and leave it hanging.
            LOG.error("{}: internal error in a completion of kind {}", peer, kind, bug);
            fail("internal error: " + bug);
        }
        if (state == LinkState.DRAINING) {
            drain();
        }
    }

    private void dispatch(int kind, int tag, int res, int flags) {
        if (res == -Errno.EIO && tls != null && tls.controlRecordMet(kind)) {
            return;
        }
        switch (kind) {
            case OpKind.SOCKET -> connector.onSocket(res);
            case OpKind.SOCKOPT -> connector.onSockopt(res);
            case OpKind.CONNECT -> connector.onConnect(res);
            case OpKind.CONNECT_WAIT -> connector.onConnectWait(res);
            case OpKind.HS_SEND -> handshake.onSent(res);
            case OpKind.HS_RECV -> handshake.onReceived(res);
            case OpKind.TX_HEADERS, OpKind.TX_PAYLOAD -> sender.onSent(tag, res, flags);
            case OpKind.RX_HEADER -> replies.onHeaderBytes(res);
            case OpKind.RX_DATA -> replies.landing.onData(tag, res);
            case OpKind.RX_ZEROES -> replies.landing.onZeroes(res);
            case OpKind.CANCEL, OpKind.SHUTDOWN, OpKind.DISC -> {
                // CANCEL: 0, or ENOENT/EALREADY when the receive completed first; its completion comes either way.
                // SHUTDOWN: outstanding operations now complete with errors. DISC: the goodbye went out or not.
            }
            case OpKind.CLOSE -> fd = -1;
            default -> LOG.warn("{}: completion of unknown kind {}", peer, kind);
        }
    }

    // ---------------------------------------------------------------- ending

    /**
     * Ends the link: no new work, outstanding operations come back, then the socket closes and the requests
     * without a reply go back to the owner. Safe to call in any state, any number of times.
     */
    void fail(String reason) {
        if (state == LinkState.DRAINING || state == LinkState.CLOSED) {
            return;
        }
        LinkState was = state;
        state = LinkState.DRAINING;
        deadlines.stop();
        sender.abandonQueued();
        replies.abandonHeld();
        if (was == LinkState.READY) {
            LOG.debug("link to {} lost: {}", peer, reason);
        }
        if (relay != null) {
            relay.shutdown();
        }
        if (fd >= 0) {
            // Reset rather than close gracefully: a dead peer's unacknowledged data (and the SEND_ZC pages it
            // pins) is dropped at close instead of being retransmitted by an orphaned socket for minutes.
            LinuxCalls.setLinger(fd, true, 0);
        }
        shutdownSocket();
        owner.down(this, reason);
        drain();
    }

    /** Ends the link for its owner's reasons (loop thread): its unanswered requests go back as after a failure. */
    public void abandon(String reason) {
        fail(reason);
    }

    /** Sends NBD_CMD_DISC when idle and closes; otherwise ends the link as {@link #fail} does. */
    public void disconnect() {
        if (state == LinkState.READY && idle()) {
            state = LinkState.DRAINING;
            deadlines.stop();
            sender.sendDisconnect();
            shutdownSocket();
            owner.down(this, "disconnected");
            drain();
        } else {
            fail("disconnected");
        }
    }

    private void shutdownSocket() {
        if (fd >= 0) {
            count(sqes.shutdown(fd, SHUT_RDWR, OpKind.data(OpKind.SHUTDOWN, 0)));
        }
    }

    /** Closes the socket once only SEND_ZC notifications are outstanding; reports CLOSED once nothing is. */
    private void drain() {
        if (fd >= 0 && !closeSent && inFlight.onlyNotificationsLeft()) {
            closeSent = true;
            count(sqes.close(fd, OpKind.data(OpKind.CLOSE, 0)));
            return;
        }
        if (!inFlight.none() || state == LinkState.CLOSED) {
            return;
        }
        state = LinkState.CLOSED;
        List<Request> unanswered = new ArrayList<>();
        for (Request r : requests) {
            if (r.phase == Request.Phase.ON_LINK) {
                if (r.replied) {
                    r.pendingOps = 0; // the kernel has let go of everything: nothing is outstanding
                    finishIfDone(r);
                } else {
                    unanswered.add(r);
                }
            }
        }
        unanswered.sort(Comparator.comparingLong(Request::seq));
        for (Request r : unanswered) {
            r.phase = Request.Phase.WAITING;
        }
        owner.closed(this, unanswered);
        if (reg != null) {
            reg.cancel(); // unregistered() follows
        } else {
            closed.complete(null);
        }
    }

    /** Ends the link from any thread; the future completes once its resources are released. */
    public CompletableFuture<Void> closeAsync(String reason) {
        loop.execute(() -> fail(reason));
        return closed;
    }

    @Override
    public void close() {
        // The loop is shutting down: its ring goes away with every operation still in it.
        state = LinkState.CLOSED;
    }

    /** A send that posts no completion on success failed (the socket had no room, or it broke). */
    private void silentSendFailed(int res) {
        fail(res == -Errno.EAGAIN ? "a lone write found no room in the socket's send buffer"
                : "send failed: " + Errno.describe(-res));
    }

    @Override
    public void unregistered() {
        if (silentSlot >= 0) {
            silent.detach(silentSlot);
            silentSlot = -1;
        }
        deadlines.stop(); // the loop went away without a fail(): the ticker must not keep firing at it
        if (relay != null) {
            relay.shutdown();
        }
        replies.unregisterRx(); // before its memory goes: the slot must not outlive the pages it names
        arena.close();
        closed.complete(null);
    }

    // ---------------------------------------------------------------- helpers

    /** Counts an operation just submitted; every submission goes through here. */
    long count(long userData) {
        return inFlight.add(userData);
    }

    /**
     * Posts a receive on the socket; every receive of the link goes through here, so that on a TLS link the
     * one in flight can be posted again after a control record.
     */
    long recv(byte sqeFlags, short recvFlags, long addr, int len, int msgFlags, int bufIndex, short data) {
        if (tls != null) {
            tls.remember(sqeFlags, recvFlags, addr, len, msgFlags, bufIndex, data);
        }
        return count(sqes.recv(sqeFlags, recvFlags, fd, addr, len, msgFlags, bufIndex, data));
    }
}
