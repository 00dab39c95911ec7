package io.nbdgate.gateway.testsupport;

import io.nbdgate.gateway.config.DeviceConfig;
import io.nbdgate.gateway.device.QuietUringTransport;
import io.nbdgate.gateway.link.Link;
import io.nbdgate.gateway.link.LinkOptions;
import io.nbdgate.gateway.link.Request;
import io.nbdgate.gateway.session.QueueSession;
import io.nbdgate.gateway.session.ReconnectPolicy;
import io.nbdgate.protocol.Command;
import io.nbdgate.protocol.client.HandshakeConfig;
import io.nbdgate.uring.FixedResources;
import io.nbdgate.uring.LinuxCalls;
import io.nbdgate.uring.NettyRing;
import io.netty.channel.IoEvent;
import io.netty.channel.IoRegistration;
import io.netty.channel.uring.IoUringIoHandle;
import io.netty.channel.IoEventLoop;
import io.netty.channel.MultiThreadIoEventLoopGroup;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.net.SocketAddress;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.Callable;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;
import java.util.function.ToLongFunction;

/**
 * A queue session on a Netty io_uring loop of its own, without ublk: requests name Java memory (copy mode),
 * so tests on the host drive the real data path against real servers. Completions come back as futures.
 */
public final class SessionHarness implements AutoCloseable {
    public final MultiThreadIoEventLoopGroup group = new MultiThreadIoEventLoopGroup(1, QuietUringTransport.ioHandlerFactory());
    public final IoEventLoop loop = (IoEventLoop) group.next();
    public final Arena arena = Arena.ofShared();
    private final int zeroFd;
    private final ConcurrentHashMap<Integer, CompletableFuture<Integer>> pending = new ConcurrentHashMap<>();
    /** Completions that nobody waited for: a request completed twice, or one never submitted. */
    public final java.util.concurrent.atomic.AtomicInteger strayCompletions = new java.util.concurrent.atomic.AtomicInteger();
    public QueueSession session;
    /**
     * With {@link #recordFrames}: per tag, the link's frames ("Class.method", innermost first) that the request's
     * last completion ran in, which says what completed it (a reply receive, a data receive, a send, a task).
     */
    public final ConcurrentHashMap<Integer, List<String>> completedIn = new ConcurrentHashMap<>();
    public volatile boolean recordFrames;
    /** Per tag, the loop's turn ({@link QuietUringTransport#turns}) in which the request's last completion ran. */
    public final ConcurrentHashMap<Integer, Long> completedTurn = new ConcurrentHashMap<>();
    private final List<ExternalNbdServer> servers = new java.util.ArrayList<>();

    public SessionHarness() throws Exception {
        zeroFd = LinuxCalls.open("/dev/zero", LinuxCalls.O_RDONLY, 0);
    }

    public LinkOptions linkOptions(Duration connectTimeout, Duration ioTimeout, int stageMax) {
        return new LinkOptions(connectTimeout, ioTimeout, zeroFd, DeviceConfig.DEFAULT_SEND_ZC_MIN, stageMax,
                DeviceConfig.defaultKeepalive(ioTimeout));
    }

    /** Starts a session; the future completes once its first link is READY. */
    public CompletableFuture<QueueSession> opening(SocketAddress at, HandshakeConfig config, int depth,
                                                   LinkOptions options, ReconnectPolicy policy) {
        return opening(at, config, depth, options, policy, false);
    }

    /** {@code needsMultiConn}: the session is one of several connections of a device (a second queue). */
    public CompletableFuture<QueueSession> opening(SocketAddress at, HandshakeConfig config, int depth,
                                                   LinkOptions options, ReconnectPolicy policy, boolean needsMultiConn) {
        return QueueSession.open("test", 0, loop, () -> at, config, options, depth, policy, needsMultiConn, r -> {
            completedTurn.put(r.tag(), QuietUringTransport.turns(loop));
            if (recordFrames) {
                completedIn.put(r.tag(), StackWalker.getInstance().walk(frames -> frames
                        .filter(f -> f.getClassName().startsWith("io.nbdgate.gateway.link."))
                        .map(f -> f.getClassName().substring(f.getClassName().lastIndexOf('.') + 1) + "."
                                + f.getMethodName())
                        .toList()));
            }
            CompletableFuture<Integer> f = pending.remove(r.tag());
            if (f == null) {
                strayCompletions.incrementAndGet();
                return;
            }
            f.complete(r.result());
        }).whenComplete((s, e) -> session = s);
    }

    /**
     * Starts a session whose completions go to {@code listener} on the loop instead of to futures: for drivers
     * that must not allocate per request.
     */
    public CompletableFuture<QueueSession> openDriven(SocketAddress at, HandshakeConfig config, int depth,
                                                      LinkOptions options, ReconnectPolicy policy,
                                                      QueueSession.Listener listener) {
        return QueueSession.open("test", 0, loop, () -> at, config, options, depth, policy, false, listener)
                .whenComplete((s, e) -> session = s);
    }

    public QueueSession open(SocketAddress at, HandshakeConfig config, int depth, Duration ioTimeout, int stageMax,
                             ReconnectPolicy policy) throws Exception {
        return opening(at, config, depth, linkOptions(Duration.ofSeconds(5), ioTimeout, stageMax), policy)
                .get(20, TimeUnit.SECONDS);
    }

    /** A server the sessions talk to, stopped by {@link #close} after them; returns it. */
    public ExternalNbdServer serving(ExternalNbdServer server) {
        servers.add(server);
        return server;
    }

    /** Submits on the loop; {@code buf} null for commands without data. */
    public CompletableFuture<Integer> submit(int tag, Command cmd, int flags, long offset, long length,
                                             MemorySegment buf) {
        CompletableFuture<Integer> f = expect(tag);
        loop.execute(() -> submitNow(tag, cmd, flags, offset, length, buf));
        return f;
    }

    /** Registers interest in {@code tag}'s completion; pair with {@link #submitNow} on the loop. */
    public CompletableFuture<Integer> expect(int tag) {
        CompletableFuture<Integer> f = new CompletableFuture<>();
        if (pending.putIfAbsent(tag, f) != null) {
            throw new IllegalStateException("tag " + tag + " is already in flight");
        }
        return f;
    }

    /** Loop thread only. */
    public void submitNow(int tag, Command cmd, int flags, long offset, long length, MemorySegment buf) {
        submitNow(tag, cmd, flags, offset, length, buf == null ? 0 : buf.address());
    }

    /** Loop thread only; {@code address} 0 for commands without data. */
    public void submitNow(int tag, Command cmd, int flags, long offset, long length, long address) {
        Request r = session.request(tag).load(cmd, flags, offset, length);
        if (address == 0) {
            r.buffer().none();
        } else {
            r.buffer().memory(address);
        }
        session.submit(r);
    }

    /** Loop thread only; {@code index}: a slot of {@link #registerFixed}, {@code address} within its memory. */
    public void submitFixedNow(int tag, Command cmd, long offset, long length, int index, long address) {
        Request r = session.request(tag).load(cmd, 0, offset, length);
        r.buffer().registered(index, address);
        session.submit(r);
    }

    /**
     * Registers {@code memory} in a slot of the loop ring's fixed-buffer table, as ublk registers a request's pages
     * for zero copy; returns the slot.
     */
    public int registerFixed(MemorySegment memory) throws Exception {
        IoRegistration reg = loop.register(new IoUringIoHandle() {
            @Override
            public void handle(IoRegistration registration, IoEvent ioEvent) {
            }

            @Override
            public void close() {
            }
        }).get(10, TimeUnit.SECONDS);
        try {
            return onLoop(() -> {
                NettyRing ring = NettyRing.of(reg.attachment(), NettyRing.DEFAULT_BUFFER_SLOTS);
                int index = ring.buffers().allocate(1);
                FixedResources.updateBuffer(ring.fd(), index, memory);
                return index;
            });
        } finally {
            reg.cancel();
        }
    }

    public <T> T onLoop(Callable<T> c) throws Exception {
        return loop.submit(c).get(10, TimeUnit.SECONDS);
    }

    /** A counter of the link carrying requests now. */
    public long link(ToLongFunction<Link> counter) throws Exception {
        return onLoop(() -> counter.applyAsLong(session.link()));
    }

    @Override
    public void close() throws Exception {
        if (session != null) {
            session.stop(Duration.ofSeconds(1)).get(10, TimeUnit.SECONDS);
        }
        group.shutdownGracefully(0, 1, TimeUnit.SECONDS).sync();
        servers.forEach(ExternalNbdServer::close);
        LinuxCalls.close(zeroFd);
        arena.close();
    }
}
