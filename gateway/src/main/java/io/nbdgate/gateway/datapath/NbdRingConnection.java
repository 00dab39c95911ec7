package io.nbdgate.gateway.datapath;

import io.netty.channel.IoEvent;
import io.netty.channel.IoEventLoop;
import io.netty.channel.IoRegistration;
import io.netty.channel.uring.IoUringIoEvent;
import io.netty.channel.uring.IoUringIoHandle;
import io.netty.channel.uring.IoUringIoOps;
import io.nbdgate.protocol.Command;
import io.nbdgate.protocol.ExportInfo;
import io.nbdgate.protocol.NbdError;
import io.nbdgate.protocol.client.ClientHandshake;
import io.nbdgate.protocol.client.HandshakeAction;
import io.nbdgate.protocol.client.HandshakeConfig;
import io.nbdgate.protocol.wire.ReplyReassembler;
import io.nbdgate.protocol.wire.RequestCodec;
import io.nbdgate.uring.FixedResources;
import io.nbdgate.uring.LinuxCalls;
import io.nbdgate.uring.NettyRing;
import io.nbdgate.uring.UringException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.NetworkInterface;
import java.net.SocketAddress;
import java.net.SocketException;
import java.net.UnixDomainSocketAddress;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.time.Duration;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.Future;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * One NBD connection whose every socket operation — socket, connect, handshake, requests, replies — is
 * an io_uring operation on the event loop of the ublk queue it serves. Because it shares that loop's
 * ring, request data moves between the kernel's request pages and the socket with SEND_ZC and RECV on
 * the fixed buffer ublk auto-registered for the tag: Java never touches a data byte. In copy modes
 * the same operations use the request's memory instead.
 *
 * <p>Sends go out as one IOSQE_IO_LINK chain at a time — header runs and payloads in wire order, the
 * kernel running each after the previous completed — so bytes never interleave on the stream, and a
 * request's header and payload cost one ring submission together; a chain is started by a loop task, so the
 * requests of one batch of ublk completions share it. Replies: while a READ that must be received straight
 * into its pages is out, header bytes are received only as far as {@link ReplyReassembler#safeReadAhead()}
 * allows, and the receive of the next header is linked behind each data receive; while only writes and small
 * READs are out, one receive takes every reply that has arrived and small READs' data is copied into place
 * from it (staging, {@code stageMax}).
 *
 * <p>Everything runs on the loop thread; {@link #submit} must be called there.
 */
public final class NbdRingConnection implements IoUringIoHandle {
    private static final Logger LOG = LoggerFactory.getLogger(NbdRingConnection.class);

    /** Outcomes, delivered on the loop thread. */
    public interface Listener {
        /** A request finished: bytes transferred (0 for commands without data) or a negative errno. */
        void completed(int tag, int result);

        /** The connection is gone; every request in flight was or will be completed with -EIO. Called once. */
        void lost(String reason);
    }

    // io_uring ABI (include/uapi/linux/io_uring.h) that Netty does not export.
    static final byte OP_READ_FIXED = 4, OP_CONNECT = 16, OP_CLOSE = 19, OP_SEND = 26, OP_RECV = 27,
            OP_SHUTDOWN = 34, OP_SOCKET = 45, OP_URING_CMD = 46, OP_SEND_ZC = 47;
    static final short RECVSEND_POLL_FIRST = 1, RECVSEND_FIXED_BUF = 1 << 2;
    static final byte IOSQE_IO_LINK = 1 << 2;
    private static final int ECANCELED = 125;
    static final int CQE_F_MORE = 1 << 1, CQE_F_NOTIF = 1 << 3;
    private static final int MSG_WAITALL = 0x100, MSG_NOSIGNAL = 0x4000, MSG_MORE = 0x8000;
    private static final int SOCK_STREAM = 1, SOCK_CLOEXEC = 0x80000, SHUT_RDWR = 2;
    private static final int SOCKET_URING_OP_SETSOCKOPT = 3, IPPROTO_TCP = 6, TCP_NODELAY = 1, SOL_SOCKET = 1,
            SO_RCVLOWAT = 18;
    private static final int EIO = 5, EAGAIN = 11, EINTR = 4, EINVAL = 22;

    // Netty's 16-bit per-operation data: kind in the top 4 bits, tag (< 4096) below.
    private static final int K_SOCKET = 0, K_SOCKOPT = 1, K_CONNECT = 2, K_HS_SEND = 3, K_HS_RECV = 4,
            K_TX_HEADERS = 5, K_TX_PAYLOAD = 6, K_RX_HEADER = 7, K_RX_DATA = 8, K_RX_ZEROES = 9,
            K_SHUTDOWN = 10, K_CLOSE = 11, K_CANCEL = 12, K_LOWAT = 14;
    static final byte OP_ASYNC_CANCEL = 14;
    /** Header bytes one batching receive may take (bunches of write replies and small staged READs). */
    private static final int HEADER_BATCH_MAX = 64 << 10;
    private static final int MAX_TAGS = 4096;
    private static final int RX_CAPACITY = 1 << 20; // the largest handshake message we accept
    private static final int HEADER_MAX = 32;
    /**
     * Data receives of at least this many bytes wait for all of their bytes (SO_RCVLOWAT): the loop is woken once
     * per receive, not once per arriving segment (up to 64 KiB each on loopback).
     */
    static final int LOW_WATER_MIN = 64 << 10;
    /** SQEs in one send chain at most; the rest waits for the next chain. */
    private static final int MAX_CHAIN = 64;

    private enum State { CONNECTING, HANDSHAKE, READY, CLOSING, CLOSED }

    private final IoEventLoop loop;
    private final SocketAddress address;
    private final HandshakeConfig handshakeConfig;
    private final int depth;
    private final Duration ioTimeout;
    private final Listener listener;
    private final int zeroFd;
    private final int sendZcMin;
    /** The server is on this host: SEND_ZC pages would be copied on local delivery anyway. */
    private final boolean localPeer;
    private final int stageMax;
    private final Arena arena = Arena.ofShared();
    private final MemorySegment rxSeg;
    private final ByteBuffer rx;
    private final MemorySegment txSeg;
    private final ByteBuffer tx;
    private final MemorySegment sockaddr;
    private final MemorySegment one;
    private final MemorySegment lowWaterValue;
    final CompletableFuture<ExportInfo> ready = new CompletableFuture<>();

    private IoRegistration reg;
    private NettyRing ring;
    private State state = State.CONNECTING;
    private int fd = -1;
    private int opsInFlight;
    private String lostReason;
    private ClientHandshake handshake;
    private ExportInfo export;
    private ReplyReassembler<Integer> replies;
    private Future<?> timer; // off the loop's schedule: see TimeoutTicker

    // Per tag.
    private final Integer[] tagObjects = new Integer[MAX_TAGS];
    private final long[] cookie;
    private final boolean[] busy;      // submitted, not yet completed to the listener
    private final boolean[] replied;
    private final int[] result;
    private final boolean[] sending;   // header or payload not fully sent yet
    private final int[] zcPending;     // SEND_ZC notifications still to come
    private final long[] startNanos;
    private final int[] bufIndex;      // fixed buffer, or -1 for memory
    private final long[] bufAddress;   // base of the request's data: fixed-buffer address or memory address
    private final int[] headerPos;
    private final int[] headerLen;
    private final long[] payloadLen;
    private final long[] dataLen;      // bytes a successful READ or WRITE reports; 0 for other commands
    private final long[] heldOffset;   // a READ held back while a batching receive is out
    private final int[] heldFlags;
    private final int[] stageFd;       // user-copy fd of a fixed buffer's pages, -1 if none
    private final long[] stageOffset;  // file offset of the request's first byte on stageFd
    private final boolean[] directRead; // a READ whose data must be received straight into its buffer

    // Send queue: tags in wire order; one send chain in flight, covering the first chainCount of them.
    private final int[] txQueue;
    private int txQueueHead;
    private int txQueueCount;
    private int txWrite;
    private boolean txBusy;
    private boolean flushQueued;
    private final Runnable flush = this::flushRequests;
    private final long[] chainAddr = new long[MAX_CHAIN];
    private final int[] chainLen = new int[MAX_CHAIN];
    private final int[] chainTag = new int[MAX_CHAIN]; // payload's tag, -1 for a run of headers
    private final boolean[] chainZc = new boolean[MAX_CHAIN]; // payload sent with SEND_ZC
    private int chainOps;   // SQEs of the chain whose completion is still to come
    private int chainNext;  // index of the SQE whose completion comes next (a chain completes in order)
    private int chainCount; // requests the chain carries, from txQueueHead
    // Handshake and disconnect messages: one plain send at a time.
    private int runStart;
    private int runLength;
    private int runSent;

    // Receives: at most one into rx (header bytes) and one into a request's buffer; the first may be linked
    // behind the second.
    private boolean rxInFlight;
    // The receive into rx was posted past the safe read-ahead (only writes and small, stageable READs out): until
    // it completes, a READ that cannot be staged is held back (its reply could land in rx) and the receive cancelled.
    private boolean rxBatching;
    private long rxUserData;
    private boolean rxCancelSent;
    // rx's slot in the ring's fixed-buffer table once transmission starts, -1 while unregistered. Receiving into a
    // registered buffer, the kernel copies with its memcpy into pinned pages instead of copy_to_user (on CPUs
    // without fast short rep movsb that is the dearer copy). Kernels before 7.2 refuse RECV with FIXED_BUF: the
    // first reply receive is never linked, so its EINVAL turns this off before anything depends on it.
    private int rxIndex = -1;
    private long fixedRxBytes;
    private final int[] heldReads;
    private int heldCount;
    // READs in flight whose replies must not (or should not) be staged: too large, or no way to copy into place.
    private int directReads;
    // Counters, loop thread only (plain fields: the hot path pays no fence).
    private long headerReceives;
    private long sendChains;
    private long readsHeldBack;
    private long stagedBytes;
    private boolean dataInFlight;
    private boolean aheadLinked;
    // SO_RCVLOWAT: usable once the socket took a setsockopt through the ring (TCP only); the value last asked for.
    private boolean lowWaterUsable;
    private boolean lowWaterWanted = true;
    private int rcvLowat = 1;
    private long lowWaterReceives;

    private NbdRingConnection(IoEventLoop loop, SocketAddress address, HandshakeConfig config, int depth,
                              Duration ioTimeout, int zeroFd, int sendZcMin, int stageMax, Listener listener) {
        if (depth < 1 || depth > MAX_TAGS) {
            throw new IllegalArgumentException("depth " + depth + " outside 1.." + MAX_TAGS);
        }
        this.loop = loop;
        this.address = address;
        this.handshakeConfig = config;
        this.depth = depth;
        this.ioTimeout = ioTimeout;
        this.zeroFd = zeroFd;
        this.sendZcMin = sendZcMin;
        this.localPeer = onThisHost(address);
        this.stageMax = stageMax;
        this.listener = listener;
        rxSeg = arena.allocate(RX_CAPACITY, 4096);
        rx = rxSeg.asByteBuffer().order(ByteOrder.BIG_ENDIAN);
        rx.limit(0);
        // Headers are packed densely and wrap; twice the worst case in flight keeps writer and sender apart.
        int txCapacity = Math.max(64 << 10, 2 * depth * HEADER_MAX + HEADER_MAX);
        txSeg = arena.allocate(txCapacity, 4096);
        tx = txSeg.asByteBuffer().order(ByteOrder.BIG_ENDIAN);
        sockaddr = SocketAddresses.encode(arena, address);
        one = arena.allocate(ValueLayout.JAVA_INT);
        one.set(ValueLayout.JAVA_INT, 0, 1);
        lowWaterValue = arena.allocate(ValueLayout.JAVA_INT);
        cookie = new long[depth];
        busy = new boolean[depth];
        replied = new boolean[depth];
        result = new int[depth];
        sending = new boolean[depth];
        zcPending = new int[depth];
        startNanos = new long[depth];
        bufIndex = new int[depth];
        bufAddress = new long[depth];
        headerPos = new int[depth];
        headerLen = new int[depth];
        payloadLen = new long[depth];
        dataLen = new long[depth];
        heldOffset = new long[depth];
        heldFlags = new int[depth];
        stageFd = new int[depth];
        stageOffset = new long[depth];
        directRead = new boolean[depth];
        txQueue = new int[depth];
        heldReads = new int[depth];
        for (int i = 0; i < depth; i++) {
            tagObjects[i] = i;
        }
    }

    /**
     * Connects to {@code address} and runs the handshake, all on {@code loop}. The future completes
     * with the connection once the transmission phase begins, or fails with a one-line reason.
     *
     * @param zeroFd an open /dev/zero, the source of zeroes for holes in replies to zero-copy reads
     * @param sendZcMin payloads in fixed buffers of at least this many bytes go out with SEND_ZC, smaller
     *                  ones with SEND from the same buffer (the kernel copies them)
     * @param stageMax  READs of at most this many bytes may be received together with reply headers and then
     *                  copied into place (by the kernel, through user copy, for fixed buffers); 0: never
     */
    public static CompletableFuture<NbdRingConnection> connect(IoEventLoop loop, SocketAddress address,
            HandshakeConfig config, int depth, Duration connectTimeout, Duration ioTimeout, int zeroFd,
            int sendZcMin, int stageMax, Listener listener) {
        NbdRingConnection c = new NbdRingConnection(loop, address, config, depth, ioTimeout, zeroFd, sendZcMin,
                stageMax, listener);
        CompletableFuture<NbdRingConnection> out = new CompletableFuture<>();
        c.ready.whenComplete((info, err) -> {
            if (err != null) {
                out.completeExceptionally(err);
            } else {
                out.complete(c);
            }
        });
        loop.register(c).addListener(f -> {
            if (!f.isSuccess()) {
                c.arena.close();
                c.ready.completeExceptionally(new NbdConnectionException("cannot register on the event loop: "
                        + f.cause()));
                return;
            }
            Runnable begin = () -> c.begin((IoRegistration) f.getNow(), connectTimeout);
            if (loop.inEventLoop()) {
                begin.run();
            } else {
                loop.execute(begin);
            }
        });
        return out;
    }

    /** What the handshake learned; valid once {@link #connect}'s future completed. */
    public ExportInfo export() {
        return export;
    }

    /** Receives that took reply header bytes, since the connection began. Loop thread only. */
    public long headerReceives() {
        return headerReceives;
    }

    /** Linked send chains (each one ring submission of request headers and payloads) so far. Loop thread only. */
    public long sendChains() {
        return sendChains;
    }

    /** Reply data bytes received together with headers and copied into place. Loop thread only. */
    public long stagedBytes() {
        return stagedBytes;
    }

    /** Reply bytes received into the registered rx buffer (0 where the kernel cannot). Loop thread only. */
    public long fixedRxBytes() {
        return fixedRxBytes;
    }

    /** Data receives that waited, through SO_RCVLOWAT, for all of their bytes. Loop thread only. */
    public long lowWaterReceives() {
        return lowWaterReceives;
    }

    /** Turns the SO_RCVLOWAT wait of large data receives off or on (for comparisons). Loop thread only. */
    void useLowWater(boolean on) {
        lowWaterWanted = on;
    }

    /** READs that waited for a batching header receive to end before they were sent. Loop thread only. */
    public long readsHeldBack() {
        return readsHeldBack;
    }

    public IoEventLoop loop() {
        return loop;
    }

    public boolean isOpen() {
        return state == State.READY;
    }

    // ---------------------------------------------------------------- connect and handshake

    private void begin(IoRegistration r, Duration connectTimeout) {
        reg = r;
        ring = NettyRing.of(r.attachment(), NettyRing.DEFAULT_BUFFER_SLOTS);
        timer = TimeoutTicker.after(loop, connectTimeout, () -> {
            if (state == State.CONNECTING || state == State.HANDSHAKE) {
                fail("connecting to " + describe(address) + " timed out after " + connectTimeout.toMillis() + " ms");
            }
        });
        op(OP_SOCKET, (byte) 0, (short) 0, SocketAddresses.family(address), SOCK_STREAM | SOCK_CLOEXEC, 0, 0, 0, data(K_SOCKET, 0), (short) 0, 0, 0);
    }

    private void connectSocket() {
        op(OP_CONNECT, (byte) 0, (short) 0, fd, sockaddr.byteSize(), sockaddr.address(), 0, 0, data(K_CONNECT, 0), (short) 0, 0, 0);
    }

    private void handshakeStep() {
        HandshakeAction a = handshake.step(rx);
        switch (a) {
            case HandshakeAction.Send s -> {
                ByteBuffer bytes = s.bytes();
                if (bytes.remaining() > tx.capacity()) {
                    fail("handshake message of " + bytes.remaining() + " bytes is too large");
                    return;
                }
                tx.clear();
                tx.put(bytes);
                runStart = 0;
                runLength = tx.position();
                runSent = 0;
                sendHandshakeBytes();
            }
            case HandshakeAction.NeedMore m -> receiveAtLeast(m.bytes(), K_HS_RECV);
            case HandshakeAction.Ready r -> startTransmission(r.export());
            case HandshakeAction.Failed f -> fail("handshake with " + describe(address) + " failed: "
                    + f.error().message());
            case HandshakeAction.UpgradeToTls t -> fail("the server requires TLS, which this version does not speak");
            case HandshakeAction.Listed l -> fail("unexpected export list in an attach handshake");
        }
    }

    private void sendHandshakeBytes() {
        op(OP_SEND, (byte) 0, (short) 0, fd, 0, txSeg.address() + runStart + runSent, runLength - runSent, MSG_NOSIGNAL, data(K_HS_SEND, 0), (short) 0, 0, 0);
    }

    private void startTransmission(ExportInfo info) {
        export = info;
        replies = new ReplyReassembler<>(info.mode(), depth);
        state = State.READY;
        timer.cancel(false);
        long period = Math.max(100, Math.min(1000, ioTimeout.toMillis() / 4));
        timer = TimeoutTicker.every(loop, Duration.ofMillis(period), this::checkTimeouts);
        tx.clear();
        txWrite = 0;
        registerRx();
        LOG.debug("connected to {}: export '{}' size {} mode {}", describe(address), info.name(), info.size(),
                info.mode());
        ready.complete(info);
        pumpReplies();
    }

    // ---------------------------------------------------------------- requests

    /**
     * Sends one request for {@code tag}. Data (READ destination, WRITE source) is a fixed buffer when
     * {@code fixedIndex >= 0} — at address {@code base} within it, 0 for ublk's auto-registered
     * buffers — or memory at {@code base} otherwise. Loop thread only.
     */
    public void submit(int tag, Command command, int flags, long offset, long length, int fixedIndex, long base) {
        submit(tag, command, flags, offset, length, fixedIndex, base, -1, 0);
    }

    /**
     * {@link #submit(int, Command, int, long, long, int, long)} for a fixed buffer whose pages can also be
     * written through {@code userCopyFd} (ublk user copy) at {@code userCopyOffset}: lets a small READ's
     * reply be staged, i.e. received together with other replies and then written into place by the kernel.
     */
    public void submit(int tag, Command command, int flags, long offset, long length, int fixedIndex, long base,
                       int userCopyFd, long userCopyOffset) {
        if (busy[tag]) {
            throw new IllegalStateException("tag " + tag + " is already in flight");
        }
        busy[tag] = true;
        replied[tag] = false;
        zcPending[tag] = 0;
        if (state != State.READY) {
            replied[tag] = true;
            result[tag] = -EIO;
            finishIfDone(tag);
            return;
        }
        bufIndex[tag] = fixedIndex;
        bufAddress[tag] = base;
        stageFd[tag] = userCopyFd;
        stageOffset[tag] = userCopyOffset;
        boolean write = command == Command.WRITE;
        payloadLen[tag] = write ? length : 0;
        dataLen[tag] = write || command == Command.READ ? length : 0;
        startNanos[tag] = System.nanoTime();
        if (command == Command.READ && rxBatching && !canStage(tag)) {
            heldOffset[tag] = offset;
            heldFlags[tag] = flags;
            heldReads[heldCount++] = tag;
            readsHeldBack++;
            if (!rxCancelSent) {
                rxCancelSent = true;
                op(OP_ASYNC_CANCEL, (byte) 0, (short) 0, -1, 0, rxUserData, 0, 0, data(K_CANCEL, 0), (short) 0, 0, 0);
            }
            return;
        }
        enqueue(tag, command, flags, offset, length);
    }

    /** Whether reply data for {@code tag} that lands in rx can be copied into place. */
    private boolean canStage(int tag) {
        return stageMax > 0 && (bufIndex[tag] < 0 || stageFd[tag] >= 0);
    }

    /** Registers the request with the reassembler and queues its header (and payload) for sending. */
    private void enqueue(int tag, Command command, int flags, long offset, long length) {
        if (command == Command.READ && (length > stageMax || !canStage(tag))) {
            directRead[tag] = true;
            directReads++;
        }
        long c = replies.register(command, flags, offset, length, tagObjects[tag]);
        cookie[tag] = c;
        int size = replies.mode().requestHeaderSize();
        if (txWrite + size > tx.capacity()) {
            txWrite = 0;
        }
        tx.position(txWrite);
        RequestCodec.encode(tx, replies.mode(), command, flags, c, offset, length);
        headerPos[tag] = txWrite;
        headerLen[tag] = size;
        txWrite += size;
        sending[tag] = true;
        txQueue[(txQueueHead + txQueueCount++) % depth] = tag;
        if (!txBusy && !flushQueued) {
            // Requests the kernel hands over in one batch of completions go out in one chain: the loop runs its
            // tasks after it has handled every completion of the batch, and before it enters the kernel again.
            flushQueued = true;
            loop.execute(flush);
        }
    }

    private void flushRequests() {
        flushQueued = false;
        sendNext();
    }

    /** Sends NBD_CMD_DISC when idle and closes; requests still in flight fail with EIO. */
    public void disconnect() {
        if (state == State.READY && txQueueCount == 0 && !txBusy && replies.inFlight() == 0 && heldCount == 0) {
            tx.clear();
            RequestCodec.encode(tx, replies.mode(), Command.DISC, 0, 0, 0, 0);
            runStart = 0;
            runLength = tx.position();
            runSent = 0;
            state = State.CLOSING;
            lostReason = "disconnected";
            op(OP_SEND, (byte) 0, (short) 0, fd, 0, txSeg.address(), runLength, MSG_NOSIGNAL, data(K_HS_SEND, 0), (short) 0, 0, 0);
            shutdownSocket();
        } else {
            fail("disconnected");
        }
    }

    /**
     * Sends what is queued as one linked chain: runs of headers contiguous in the buffer, each request's
     * payload right after its header. MSG_MORE on all but the last keeps TCP from pushing partial batches.
     */
    private void sendNext() {
        if (txBusy || txQueueCount == 0 || state != State.READY) {
            return;
        }
        int maxOps = Math.min(MAX_CHAIN, ring.sqEntries());
        int n = 0;
        int count = 0;
        int runPos = -1;
        int runLen = 0;
        for (int i = 0; i < txQueueCount; i++) {
            int t = txQueue[(txQueueHead + i) % depth];
            boolean joins = runLen > 0 && headerPos[t] == runPos + runLen;
            boolean payload = payloadLen[t] > 0;
            int ops = n + (runLen > 0 && !joins ? 1 : 0) + 1 + (payload ? 1 : 0);
            if (ops > maxOps && count > 0) {
                break;
            }
            if (runLen > 0 && !joins) {
                n = plan(n, txSeg.address() + runPos, runLen, -1);
                runLen = 0;
            }
            if (runLen == 0) {
                runPos = headerPos[t];
            }
            runLen += headerLen[t];
            count++;
            if (payload) {
                n = plan(n, txSeg.address() + runPos, runLen, -1);
                runLen = 0;
                n = plan(n, bufAddress[t], (int) payloadLen[t], t);
            }
        }
        if (runLen > 0) {
            n = plan(n, txSeg.address() + runPos, runLen, -1);
        }
        ring.reserveSq(n);
        for (int k = 0; k < n; k++) {
            boolean last = k == n - 1;
            byte sqeFlags = last ? 0 : IOSQE_IO_LINK;
            int msgFlags = MSG_NOSIGNAL | MSG_WAITALL | (last ? 0 : MSG_MORE);
            int t = chainTag[k];
            if (t < 0) {
                op(OP_SEND, sqeFlags, (short) 0, fd, 0, chainAddr[k], chainLen[k], msgFlags, data(K_TX_HEADERS, 0), (short) 0, 0, 0);
            } else if (bufIndex[t] >= 0) {
                // AF_UNIX has no zero-copy send (EOPNOTSUPP), and small payloads are cheaper copied: there a plain
                // SEND from the fixed buffer lets the kernel copy the pages into the socket; Java never touches them.
                // To a server on this host SEND_ZC buys nothing: the kernel copies zero-copy pages when it delivers
                // them to a local socket (MSG_ZEROCOPY's deferred copy) and adds a notification per send. Strict
                // zero copy (send-zc-min 0) still uses it.
                chainZc[k] = !(address instanceof UnixDomainSocketAddress) && chainLen[k] >= sendZcMin
                        && (sendZcMin == 0 || !localPeer);
                byte opcode = chainZc[k] ? OP_SEND_ZC : OP_SEND;
                op(opcode, sqeFlags, RECVSEND_FIXED_BUF, fd, 0, chainAddr[k], chainLen[k], msgFlags, data(K_TX_PAYLOAD, t), (short) bufIndex[t], 0, 0);
            } else {
                op(OP_SEND, sqeFlags, (short) 0, fd, 0, chainAddr[k], chainLen[k], msgFlags, data(K_TX_PAYLOAD, t), (short) 0, 0, 0);
            }
        }
        chainOps = n;
        chainNext = 0;
        chainCount = count;
        txBusy = true;
        sendChains++;
    }

    private int plan(int k, long addr, int len, int tag) {
        chainAddr[k] = addr;
        chainLen[k] = len;
        chainTag[k] = tag;
        chainZc[k] = false;
        return k + 1;
    }

    /** A send of the chain completed (or, for SEND_ZC, its buffer was released). */
    private void onSent(int tag, int res, int cqeFlags) {
        if ((cqeFlags & CQE_F_NOTIF) != 0) {
            // SEND_ZC: the kernel no longer references the request's pages.
            zcPending[tag]--;
            finishIfDone(tag);
            return;
        }
        if ((cqeFlags & CQE_F_MORE) != 0) {
            zcPending[tag]++; // a notification follows, also for a failed or cancelled SEND_ZC
        }
        int k = chainNext++;
        chainOps--;
        if (state == State.READY && chainTag[k] >= 0 && res > 0) {
            DataPathStats.moved(bufIndex[chainTag[k]] >= 0, res);
            if (chainZc[k]) {
                DataPathStats.sentZeroCopy(res);
            }
        }
        if (state == State.READY && res != chainLen[k]) {
            // MSG_WAITALL sends are complete unless the socket failed; the rest of the chain is cancelled.
            fail(res == 0 ? "the server stopped accepting data" : res < 0 ? "send failed: " + errnoName(-res)
                    : "send cut short: " + res + " of " + chainLen[k] + " bytes");
        }
        if (chainOps > 0) {
            return;
        }
        txBusy = false;
        if (state != State.READY) {
            return; // closing: finishClosing releases the tags once every operation is back
        }
        for (int i = 0; i < chainCount; i++) {
            int t = txQueue[txQueueHead];
            txQueueHead = (txQueueHead + 1) % depth;
            txQueueCount--;
            sending[t] = false;
            finishIfDone(t);
        }
        chainCount = 0;
        sendNext();
    }

    // ---------------------------------------------------------------- replies

    /** Advances the reply stream until an operation is outstanding; exactly one receive is posted at a time. */
    private void pumpReplies() {
        while (state == State.READY) {
            ReplyReassembler.Step step = replies.next(rx);
            switch (step) {
                case NEED_MORE -> {
                    if (!rxInFlight) {
                        receiveHeaderBytes();
                    }
                    return;
                }
                case DATA -> {
                    if (rx.hasRemaining()) {
                        if (!stageData()) {
                            return;
                        }
                        continue;
                    }
                    if (!rxInFlight && !dataInFlight) {
                        receiveData();
                    }
                    return;
                }
                case ZEROES -> {
                    if (zeroRange()) {
                        return;
                    }
                }
                case COMPLETED -> {
                    int tag = replies.completedAttachment();
                    NbdError e = replies.completedError();
                    if (directRead[tag]) {
                        directRead[tag] = false;
                        directReads--;
                    }
                    replied[tag] = true;
                    result[tag] = e == null ? (int) Math.min(Integer.MAX_VALUE, dataLen[tag]) : -e.errno();
                    if (e != null && LOG.isDebugEnabled()) {
                        LOG.debug("{}: {} failed: {} {}", describe(address), replies.completedCommand(), e,
                                replies.completedMessage());
                    }
                    finishIfDone(tag);
                    if (replies.shutdownRequested() && replies.inFlight() == 0) {
                        fail("the server is shutting down (ESHUTDOWN)");
                        return;
                    }
                }
                case EXTENT -> {
                    // Not requested by this client; the reassembler validated and skipped it.
                }
                case VIOLATION -> {
                    fail("protocol violation by " + describe(address) + ": " + replies.violation());
                    return;
                }
            }
        }
    }

    private void receiveAtLeast(int needed, int kind) {
        if (needed > rx.capacity()) {
            fail("server message of " + needed + " bytes exceeds the " + rx.capacity() + "-byte limit");
            return;
        }
        if (rx.position() + needed > rx.capacity()) {
            rx.compact().flip();
        }
        int want = needed - rx.remaining();
        op(OP_RECV, (byte) 0, (short) 0, fd, 0, rxSeg.address() + rx.limit(), want, MSG_WAITALL, data(kind, 0), (short) 0, 0, 0);
    }

    /** Receives header bytes into rx: what the reassembler needs, and as far beyond as is safe. */
    private void receiveHeaderBytes() {
        int needed = replies.bytesNeeded();
        if (replies.inFlight() > 0 && directReads == 0 && needed <= HEADER_BATCH_MAX) {
            // No reply can carry data that must go straight to a buffer (only writes, flushes and small
            // READs are out): take as many replies as have arrived; small READs' data is staged from rx.
            if (!makeRoom(HEADER_BATCH_MAX)) {
                fail("internal error: no room for reply headers"); // rx holds less than a header batch
                return;
            }
            int len = Math.min(HEADER_BATCH_MAX, rx.capacity() - rx.limit());
            rxUserData = receiveIntoRx((byte) 0, len, 0);
            rxInFlight = true;
            rxBatching = true;
            rxCancelSent = false;
            return;
        }
        int ahead = replies.safeReadAhead();
        if (ahead > rx.capacity()) {
            fail("server message of " + ahead + " bytes exceeds the " + rx.capacity() + "-byte limit");
            return;
        }
        int want = needed - rx.remaining();
        int len = ahead - rx.remaining();
        if (!makeRoom(len)) {
            fail("internal error: no room for reply headers"); // ahead never exceeds rx's capacity
            return;
        }
        // Without MSG_WAITALL a receive returns what has arrived; the reassembler asks again if it is not enough.
        receiveIntoRx((byte) 0, len, len > want ? 0 : MSG_WAITALL);
        rxInFlight = true;
    }

    /** Posts the receive of reply bytes into rx after its limit; through its fixed-buffer slot where it has one. */
    private long receiveIntoRx(byte sqeFlags, int len, int msgFlags) {
        long at = rxSeg.address() + rx.limit();
        if (rxIndex >= 0) {
            return op(OP_RECV, sqeFlags, RECVSEND_FIXED_BUF, fd, 0, at, len, msgFlags, data(K_RX_HEADER, 0), (short) rxIndex, 0, 0);
        }
        return op(OP_RECV, sqeFlags, (short) 0, fd, 0, at, len, msgFlags, data(K_RX_HEADER, 0), (short) 0, 0, 0);
    }

    /** Installs rx in a slot of the ring's fixed-buffer table; without a free slot, rx stays plain memory. */
    private void registerRx() {
        int index;
        try {
            index = ring.buffers().allocate(1);
        } catch (UringException | IllegalStateException e) {
            LOG.debug("{}: reply buffer not registered: {}", describe(address), e.getMessage());
            return;
        }
        try {
            FixedResources.updateBuffer(ring.fd(), index, rxSeg);
            rxIndex = index;
        } catch (UringException e) {
            ring.buffers().release(index, 1);
            LOG.debug("{}: reply buffer not registered: {}", describe(address), e.getMessage());
        }
    }

    /** Clears rx's slot (in-flight receives keep their own reference to the pages) and frees it. */
    private void unregisterRx() {
        if (rxIndex < 0) {
            return;
        }
        int index = rxIndex;
        rxIndex = -1;
        try {
            FixedResources.updateBuffer(ring.fd(), index, MemorySegment.NULL);
        } catch (UringException e) {
            LOG.debug("{}: clearing the reply buffer's slot failed: {}", describe(address), e.getMessage());
        }
        ring.buffers().release(index, 1);
    }

    /** Makes room for {@code want} bytes after rx's limit: rewinds an emptied rx, or compacts it. */
    private boolean makeRoom(int want) {
        if (!rx.hasRemaining()) {
            rx.limit(0);
        }
        if (rx.capacity() - rx.limit() >= want) {
            return true;
        }
        rx.compact().flip();
        return rx.capacity() - rx.limit() >= want;
    }

    /**
     * Reply data that arrived in rx with its header: copies it into the request's buffer, in memory directly,
     * into a fixed buffer's pages with a pwrite through ublk user copy (the kernel copies; Java touches nothing).
     */
    private boolean stageData() {
        int tag = replies.dataAttachment();
        if (!canStage(tag)) {
            // The hold rule keeps such a READ's reply out of rx, so this is a bug, not something a server causes.
            fail("internal error: " + rx.remaining() + " bytes of reply data were received as header bytes");
            return false;
        }
        long off = replies.dataOffset();
        int n = (int) Math.min(rx.remaining(), replies.dataLength());
        stagedBytes += n;
        DataPathStats.staged(n);
        if (bufIndex[tag] < 0) {
            // The reassembler's copy path: memory at the request's base, indexed from its first byte.
            replies.copyData(rx, MemorySegment.ofAddress(bufAddress[tag]).reinterpret(off + n).asByteBuffer());
            DataPathStats.moved(false, n);
            return true;
        }
        // A pwrite on the loop thread, not a ring WRITE: the kernel's copy of a few KiB never blocks, and the
        // request can then complete in this pass, without a CQE and another dispatch of its own.
        long w = LinuxCalls.pwrite(stageFd[tag], rxSeg.address() + rx.position(), n, stageOffset[tag] + off);
        if (w != n) {
            fail("staging reply data into the request's pages failed: "
                    + (w < 0 ? errnoName((int) -w) : "wrote " + w + " of " + n + " bytes"));
            return false;
        }
        rx.position(rx.position() + n);
        replies.dataReceived(n);
        return true;
    }

    /**
     * Receives reply data straight into the request's buffer. When this receive takes the rest of the
     * range, the receive of the next header is linked behind it: the kernel runs it as soon as the data is
     * in, without another trip through the loop.
     */
    private void receiveData() {
        int tag = replies.dataAttachment();
        long off = replies.dataOffset();
        long remaining = replies.dataLength();
        int len = (int) Math.min(remaining, 1 << 30);
        if (lowWaterUsable && lowWaterWanted && len >= LOW_WATER_MIN) {
            receiveDataWhole(tag, off, len);
            return;
        }
        boolean link = len == remaining;
        // The receive linked behind may batch if no other READ needs its data received directly, and if another
        // request is still out after this one: a batching receive holds back unstageable READs until it
        // completes, so a reply must be coming to complete it (and a linked receive cannot be cancelled).
        boolean batchNext = directReads - (directRead[tag] ? 1 : 0) == 0 && replies.inFlight() > 1;
        int aheadLen = batchNext ? HEADER_BATCH_MAX : replies.boundaryReadAhead();
        if (link && !makeRoom(aheadLen)) {
            link = false;
        }
        if (link) {
            aheadLen = Math.min(aheadLen, rx.capacity() - rx.limit());
            ring.reserveSq(2);
        }
        byte sqeFlags = link ? IOSQE_IO_LINK : 0;
        if (bufIndex[tag] >= 0) {
            op(OP_RECV, sqeFlags, RECVSEND_FIXED_BUF, fd, 0, bufAddress[tag] + off, len, MSG_WAITALL, data(K_RX_DATA, tag), (short) bufIndex[tag], 0, 0);
        } else {
            op(OP_RECV, sqeFlags, (short) 0, fd, 0, bufAddress[tag] + off, len, MSG_WAITALL, data(K_RX_DATA, tag), (short) 0, 0, 0);
        }
        dataInFlight = true;
        if (link) {
            long id = receiveIntoRx((byte) 0, aheadLen, 0);
            rxInFlight = true;
            aheadLinked = true;
            if (batchNext) {
                rxBatching = true;
                rxUserData = id;
                rxCancelSent = false;
            }
        }
    }

    /**
     * A large data receive that wakes the loop once: SO_RCVLOWAT is set to exactly the bytes this receive takes
     * (they are on their way: the reply header announced them), and the receive polls first, so the kernel
     * runs it once they have all arrived, instead of once per segment. Never more than what is coming, the mark
     * cannot stall the stream: a short receive (the kernel caps the mark, or memory pressure makes the socket
     * readable early) completes, and the next receive sets the mark to what is left. The socket shutting down
     * or failing makes it readable whatever the mark. Not MSG_WAITALL, and nothing linked behind: io_uring's own
     * retry of a short MSG_WAITALL receive would keep the old, now too high, mark.
     */
    private void receiveDataWhole(int tag, long off, int len) {
        ring.reserveSq(2);
        if (rcvLowat != len) {
            setRcvLowat(len, IOSQE_IO_LINK);
        }
        short prio = (short) (RECVSEND_POLL_FIRST | (bufIndex[tag] >= 0 ? RECVSEND_FIXED_BUF : 0));
        op(OP_RECV, (byte) 0, prio, fd, 0, bufAddress[tag] + off, len, 0, data(K_RX_DATA, tag), (short) Math.max(0, bufIndex[tag]), 0, 0);
        dataInFlight = true;
        lowWaterReceives++;
    }

    private void setRcvLowat(int value) {
        setRcvLowat(value, (byte) 0);
    }

    private void setRcvLowat(int value, byte sqeFlags) {
        MemorySegment v = value == 1 ? one : lowWaterValue;
        v.set(ValueLayout.JAVA_INT, 0, value);
        op(OP_URING_CMD, sqeFlags, (short) 0, fd, SOCKET_URING_OP_SETSOCKOPT, SOL_SOCKET | (long) SO_RCVLOWAT << 32, 0, 0, data(K_LOWAT, 0), (short) 0, 4, v.address());
        rcvLowat = value;
    }

    /** A hole in a read reply: zeroes into the destination. Returns true if an operation is now outstanding. */
    private boolean zeroRange() {
        int tag = replies.dataAttachment();
        long off = replies.dataOffset();
        long len = replies.dataLength();
        if (bufIndex[tag] >= 0) {
            // The request's pages are not in our address space: read /dev/zero into the fixed buffer.
            op(OP_READ_FIXED, (byte) 0, (short) 0, zeroFd, 0, bufAddress[tag] + off, (int) len, 0, data(K_RX_ZEROES, tag), (short) bufIndex[tag], 0, 0);
            return true;
        }
        MemorySegment.ofAddress(bufAddress[tag] + off).reinterpret(len).fill((byte) 0);
        return false;
    }

    // ---------------------------------------------------------------- completions

    @Override
    public void handle(IoRegistration registration, IoEvent ioEvent) {
        IoUringIoEvent e = (IoUringIoEvent) ioEvent;
        int res = e.res();
        int flags = e.flags();
        int kind = (e.data() >>> 12) & 0xf;
        int tag = e.data() & 0xfff;
        if ((flags & CQE_F_MORE) == 0) {
            opsInFlight--;
        }
        if (res == -EINTR || res == -EAGAIN) {
            LOG.debug("{}: op kind {} returned {}, treating as failure", describe(address), kind, res);
        }
        switch (kind) {
            case K_SOCKET -> {
                if (res < 0) {
                    fail("cannot create a socket: " + errnoName(-res));
                } else if (state == State.CONNECTING) {
                    fd = res;
                    if (address instanceof UnixDomainSocketAddress) {
                        connectSocket();
                    } else {
                        op(OP_URING_CMD, (byte) 0, (short) 0, fd, SOCKET_URING_OP_SETSOCKOPT, IPPROTO_TCP | (long) TCP_NODELAY << 32, 0, 0, data(K_SOCKOPT, 0), (short) 0, 4, one.address());
                    }
                } else {
                    closeFd(res);
                }
            }
            case K_SOCKOPT -> {
                lowWaterUsable = res >= 0;
                if (res < 0) {
                    LOG.warn("{}: TCP_NODELAY not set ({}); small requests may wait for Nagle", describe(address),
                            errnoName(-res));
                }
                if (state == State.CONNECTING) {
                    connectSocket();
                }
            }
            case K_CONNECT -> {
                if (state != State.CONNECTING) {
                    break;
                }
                if (res < 0) {
                    fail("cannot connect to " + describe(address) + ": " + errnoName(-res));
                } else {
                    state = State.HANDSHAKE;
                    handshake = new ClientHandshake(handshakeConfig);
                    handshakeStep();
                }
            }
            case K_HS_SEND -> {
                if (state == State.HANDSHAKE) {
                    if (res <= 0) {
                        fail("handshake send failed: " + (res == 0 ? "connection closed" : errnoName(-res)));
                    } else if ((runSent += res) < runLength) {
                        sendHandshakeBytes();
                    } else {
                        handshakeStep();
                    }
                }
            }
            case K_HS_RECV -> {
                if (state != State.HANDSHAKE) {
                    break;
                }
                if (res < 0) {
                    fail("handshake receive failed: " + errnoName(-res));
                } else if (res == 0) {
                    HandshakeAction end = handshake.endOfStream();
                    fail("the server closed the connection during the handshake"
                            + (end instanceof HandshakeAction.Failed f ? ": " + f.error().message() : ""));
                } else {
                    rx.limit(rx.limit() + res);
                    handshakeStep();
                }
            }
            case K_TX_HEADERS, K_TX_PAYLOAD -> onSent(tag, res, flags);
            case K_RX_HEADER -> {
                headerReceives++;
                rxInFlight = false;
                boolean linked = aheadLinked;
                aheadLinked = false;
                boolean batching = rxBatching;
                rxBatching = false;
                if (state != State.READY) {
                    break;
                }
                if (res == -EINVAL && rxIndex >= 0) {
                    // A kernel before 7.2: RECV takes no fixed buffer. Nothing was received; go on with plain receives.
                    LOG.debug("{}: RECV into a fixed buffer is not supported here; reply headers use plain receives",
                            describe(address));
                    unregisterRx();
                    pumpReplies();
                    break;
                }
                if (res <= 0 && !(res == -ECANCELED && (linked || batching))) {
                    fail(res == 0 ? "the server closed the connection" : "receiving a reply header failed: "
                            + errnoName(-res));
                    break;
                }
                // Cancelled: the data receive it was linked behind came back short (resume that first), or a
                // batching receive made way for a READ.
                if (res > 0) {
                    rx.limit(rx.limit() + res);
                    if (rxIndex >= 0) {
                        fixedRxBytes += res;
                        DataPathStats.receivedIntoFixedRx(res);
                    }
                }
                // READs held back for a batching receive go out now; the next receive respects their replies.
                releaseHeldReads();
                pumpReplies();
            }
            case K_LOWAT -> {
                if (state == State.READY && res < 0) {
                    fail("setting SO_RCVLOWAT failed: " + errnoName(-res));
                }
            }
            case K_CANCEL -> {
                // 0, or -ENOENT/-EALREADY when the receive completed first: either way its completion comes.
            }
            case K_RX_DATA -> {
                dataInFlight = false;
                if (state != State.READY) {
                    break;
                }
                if (res <= 0) {
                    fail(res == 0 ? "the server closed the connection in a reply" : "receiving reply data into "
                            + (bufIndex[tag] >= 0 ? "fixed buffer " + bufIndex[tag] : "memory") + " failed: "
                            + errnoName(-res));
                } else {
                    DataPathStats.moved(bufIndex[tag] >= 0, res);
                    replies.dataReceived(res);
                    if (rcvLowat != 1) {
                        // Before any other receive: header bytes must wake the loop from the first byte. Lowering the
                        // mark re-checks readiness (tcp_set_rcvlowat), so even a receive armed before it cannot stall.
                        setRcvLowat(1);
                    }
                    pumpReplies();
                }
            }
            case K_RX_ZEROES -> {
                if (state != State.READY) {
                    break;
                }
                if (res < 0) {
                    fail("zero-filling a hole failed: " + errnoName(-res));
                } else if (res < replies.dataLength()) {
                    fail("zero-filling a hole was short: " + res);
                } else {
                    pumpReplies();
                }
            }
            case K_SHUTDOWN -> {
                // Pending operations now complete with errors; the last one closes the socket.
            }
            case K_CLOSE -> {
                state = State.CLOSED;
                fd = -1;
                reg.cancel(); // unregistered() follows once nothing is outstanding
            }
            default -> LOG.warn("{}: completion of unknown kind {}", describe(address), kind);
        }
        if (state == State.CLOSING && opsInFlight == 0) {
            finishClosing();
        }
    }

    private void releaseHeldReads() {
        int n = heldCount;
        heldCount = 0;
        for (int i = 0; i < n && state == State.READY; i++) {
            int t = heldReads[i];
            enqueue(t, Command.READ, heldFlags[t], heldOffset[t], dataLen[t]);
        }
    }

    private void finishIfDone(int tag) {
        if (busy[tag] && replied[tag] && !sending[tag] && zcPending[tag] == 0) {
            busy[tag] = false;
            listener.completed(tag, result[tag]);
        }
    }

    private void checkTimeouts() {
        if (state != State.READY) {
            return;
        }
        long now = System.nanoTime();
        long limit = ioTimeout.toNanos();
        for (int t = 0; t < depth; t++) {
            if (busy[t] && !replied[t] && now - startNanos[t] > limit) {
                fail("no reply from " + describe(address) + " within " + ioTimeout.toMillis() + " ms");
                return;
            }
        }
    }

    // ---------------------------------------------------------------- failure and close

    /** Ends the connection: requests in flight complete with EIO once the kernel has let go of their buffers. */
    private void fail(String reason) {
        if (state == State.CLOSING || state == State.CLOSED) {
            return;
        }
        State was = state;
        state = State.CLOSING;
        lostReason = reason;
        if (timer != null) {
            timer.cancel(false);
        }
        for (int t = 0; t < depth; t++) {
            if (busy[t] && !replied[t]) {
                replied[t] = true;
                result[t] = -EIO;
            }
        }
        heldCount = 0; // held READs were never sent: they complete with the EIO just set
        // Requests queued but not being sent need no send completion; those in the send in flight wait for it.
        int inFlightRun = txBusy ? chainCount : 0;
        for (int i = inFlightRun; i < txQueueCount; i++) {
            sending[txQueue[(txQueueHead + i) % depth]] = false;
        }
        txQueueCount = inFlightRun;
        if (was == State.READY) {
            LOG.warn("connection to {} lost: {}", describe(address), reason);
            listener.lost(reason);
        } else {
            ready.completeExceptionally(new NbdConnectionException(reason));
        }
        for (int t = 0; t < depth; t++) {
            finishIfDone(t);
        }
        shutdownSocket();
        if (opsInFlight == 0) {
            finishClosing();
        }
    }

    private void shutdownSocket() {
        if (fd >= 0) {
            op(OP_SHUTDOWN, (byte) 0, (short) 0, fd, 0, 0, SHUT_RDWR, 0, data(K_SHUTDOWN, 0), (short) 0, 0, 0);
        }
    }

    private void finishClosing() {
        // Sends that were in flight have completed now: their requests can be released.
        for (int t = 0; t < depth; t++) {
            sending[t] = false;
            finishIfDone(t);
        }
        if (fd >= 0) {
            int f = fd;
            fd = -1;
            closeFd(f);
        } else {
            state = State.CLOSED;
            reg.cancel();
        }
    }

    private void closeFd(int f) {
        op(OP_CLOSE, (byte) 0, (short) 0, f, 0, 0, 0, 0, data(K_CLOSE, 0), (short) 0, 0, 0);
    }

    /** Closes the connection from any thread; completes when the socket is closed. */
    public CompletableFuture<Void> close(String reason) {
        CompletableFuture<Void> done = new CompletableFuture<>();
        loop.execute(() -> {
            fail(reason);
            closed.thenRun(() -> done.complete(null));
        });
        return done;
    }

    private final CompletableFuture<Void> closed = new CompletableFuture<>();

    @Override
    public void close() {
        // The loop is shutting down: its ring goes away with every operation still in it.
        state = State.CLOSED;
    }

    @Override
    public void unregistered() {
        if (timer != null) {
            timer.cancel(false); // the loop went away without a fail(): the ticker must not keep firing at it
        }
        unregisterRx(); // before its memory goes: the slot must not outlive the pages it names
        arena.close();
        closed.complete(null);
    }

    // ---------------------------------------------------------------- helpers

    /**
     * Submits one operation. Arguments in SQE order; personality is always 0. Bytes 56-63, which Netty never
     * writes, are cleared: a copy-mode queue on the same ring may have left a buffer address there.
     */
    private long op(byte opcode, byte flags, short ioPrio, int fd, long off, long addr, int len, int msgFlags,
                    short data, short bufIndex, int union5, long union6) {
        opsInFlight++;
        long id = reg.submit(new IoUringIoOps(opcode, flags, ioPrio, fd, off, addr, len, msgFlags, data, bufIndex, (short) 0,
                union5, union6));
        ring.writeLastSqeTail(opcode, union6, 0L);
        return id;
    }

    // Netty's IoUringIoOps(opcode, flags, ioPrio, fd, union1, union2, len, union3, data, union4 = buf_index,
    // personality, union5, union6): buf_index comes BEFORE personality; op() is the only place that builds one.
    private static short data(int kind, int tag) {
        return (short) (kind << 12 | tag);
    }

    /** Whether {@code a} is an address of this host (loopback, or one of its interfaces'), so traffic stays local. */
    public static boolean onThisHost(SocketAddress a) {
        if (!(a instanceof InetSocketAddress i) || i.getAddress() == null) {
            return false;
        }
        InetAddress ip = i.getAddress();
        if (ip.isLoopbackAddress() || ip.isAnyLocalAddress()) {
            return true;
        }
        try {
            return NetworkInterface.getByInetAddress(ip) != null;
        } catch (SocketException e) {
            return false;
        }
    }

    static String describe(SocketAddress a) {
        return a instanceof UnixDomainSocketAddress u ? "unix:" + u.getPath() : String.valueOf(a);
    }

    static String errnoName(int errno) {
        return switch (errno) {
            case 1 -> "EPERM";
            case 2 -> "ENOENT";
            case 5 -> "EIO";
            case 11 -> "EAGAIN";
            case 14 -> "EFAULT";
            case 22 -> "EINVAL";
            case 32 -> "EPIPE";
            case 95 -> "EOPNOTSUPP";
            case 103 -> "ECONNABORTED";
            case 104 -> "ECONNRESET";
            case 107 -> "ENOTCONN";
            case 110 -> "ETIMEDOUT";
            case 111 -> "ECONNREFUSED";
            case 113 -> "EHOSTUNREACH";
            case 125 -> "ECANCELED";
            default -> "errno " + errno;
        } + " (" + errno + ")";
    }
}
