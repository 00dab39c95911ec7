package io.nbdgate.gateway.device;

import io.netty.bootstrap.Bootstrap;
import io.netty.bootstrap.ServerBootstrap;
import io.netty.channel.Channel;
import io.netty.channel.ChannelFactory;
import io.netty.channel.IoEventLoop;
import io.netty.channel.IoHandle;
import io.netty.channel.IoHandler;
import io.netty.channel.IoHandlerContext;
import io.netty.channel.IoHandlerFactory;
import io.netty.channel.IoRegistration;
import io.netty.channel.ServerChannel;
import io.netty.channel.socket.DatagramChannel;
import io.netty.channel.socket.InternetProtocolFamily;
import io.netty.channel.uring.IoUringIoHandler;
import io.netty.util.concurrent.AbstractScheduledEventExecutor;
import io.netty.util.concurrent.ThreadAwareExecutor;
import io.vertx.core.Vertx;
import io.vertx.core.VertxOptions;
import io.vertx.core.datagram.DatagramSocketOptions;
import io.vertx.core.net.ClientOptionsBase;
import io.vertx.core.net.NetServerOptions;
import io.vertx.core.net.SocketAddress;
import io.vertx.core.transport.Transport;
import java.lang.invoke.MethodHandle;
import java.lang.invoke.MethodHandles;
import java.lang.invoke.MethodType;
import java.util.Collections;
import java.util.Map;
import java.util.WeakHashMap;
import java.util.function.LongSupplier;

/**
 * Vert.x's io_uring transport, with one difference: a loop that has nothing scheduled waits for completions
 * without a timeout. Netty's loop reports a deadline one second ahead when its schedule is empty (to purge
 * cancelled tasks), and its io_uring handler turns every deadline into an IORING_OP_TIMEOUT SQE that ends at
 * the next completion: on every wait an SQE, a kernel timer started and cancelled, and a CQE for nothing, which
 * at queue depth 1 is on every request. Here an empty schedule means no deadline, so the wait is one
 * io_uring_enter; a scheduled task still bounds it, and a task from another thread wakes the loop as before.
 */
public final class QuietUringTransport implements Transport {
    public static final QuietUringTransport INSTANCE = new QuietUringTransport();

    /** AbstractScheduledEventExecutor.nextScheduledTaskDeadlineNanos(): -1 when nothing is scheduled. */
    private static final MethodHandle NEXT_DEADLINE = nextDeadline();

    /** Each loop's handler, for {@link #turns}. */
    private static final Map<AbstractScheduledEventExecutor, QuietHandler> HANDLERS =
            Collections.synchronizedMap(new WeakHashMap<>());

    private QuietUringTransport() {
    }

    /**
     * How many times {@code loop} has turned to its ring (a wait, or a look, for completions, and the handling of
     * what came): what a request costs in trips through the loop. Loop thread only; -1 for a loop not made here.
     */
    public static long turns(IoEventLoop loop) {
        QuietHandler h = HANDLERS.get(loop);
        return h == null ? -1 : h.turns;
    }

    /** {@link #turns} of {@code loop} as a supplier to keep (no lookup per call); null for a loop not made here. */
    public static LongSupplier turnsOf(IoEventLoop loop) {
        QuietHandler h = HANDLERS.get(loop);
        return h == null ? null : () -> h.turns;
    }

    /** A Vert.x instance on this transport. */
    public static Vertx vertx(VertxOptions options) {
        return Vertx.builder().with(options).withTransport(INSTANCE).build();
    }

    /** The loops' handler factory, for a Netty event loop group of one's own. */
    public static IoHandlerFactory ioHandlerFactory() {
        return INSTANCE.implementation().ioHandlerFactory();
    }

    /** Whether {@code loop} runs Netty's io_uring handler, quiet or not. */
    static boolean isUring(IoEventLoop loop) {
        return loop.isIoType(IoUringIoHandler.class) || loop.isIoType(QuietHandler.class);
    }

    private static MethodHandle nextDeadline() {
        try {
            return MethodHandles.privateLookupIn(AbstractScheduledEventExecutor.class, MethodHandles.lookup())
                    .findVirtual(AbstractScheduledEventExecutor.class, "nextScheduledTaskDeadlineNanos",
                            MethodType.methodType(long.class));
        } catch (ReflectiveOperationException e) {
            return null; // another Netty: its loops wait as Netty has them wait
        }
    }

    @Override
    public String name() {
        return Transport.IO_URING.name();
    }

    @Override
    public boolean available() {
        return Transport.IO_URING.available();
    }

    @Override
    public Throwable unavailabilityCause() {
        return Transport.IO_URING.unavailabilityCause();
    }

    @Override
    public io.vertx.core.spi.transport.Transport implementation() {
        return new Implementation(Transport.IO_URING.implementation());
    }

    /** The loop's context, except that an empty schedule has no deadline. */
    private record QuietContext(IoHandlerContext context, AbstractScheduledEventExecutor loop)
            implements IoHandlerContext {
        @Override
        public boolean canBlock() {
            return context.canBlock();
        }

        @Override
        public long delayNanos(long currentTimeNanos) {
            return context.delayNanos(currentTimeNanos);
        }

        @Override
        public long deadlineNanos() {
            try {
                if ((long) NEXT_DEADLINE.invokeExact(loop) == -1) {
                    return -1;
                }
            } catch (Throwable e) {
                throw new IllegalStateException(e);
            }
            return context.deadlineNanos();
        }

        @Override
        public void reportActiveIoTime(long activeNanos) {
            context.reportActiveIoTime(activeNanos);
        }

        @Override
        public boolean shouldReportActiveIoTime() {
            return context.shouldReportActiveIoTime();
        }
    }

    /** Netty's io_uring handler, run with {@link QuietContext}. */
    static final class QuietHandler implements IoHandler {
        private final IoHandler handler;
        private final AbstractScheduledEventExecutor loop;
        private QuietContext quiet; // the loop passes the same context on every pass: one wrapper, no garbage
        private long turns;

        QuietHandler(IoHandler handler, AbstractScheduledEventExecutor loop) {
            this.handler = handler;
            this.loop = loop;
            HANDLERS.put(loop, this);
        }

        @Override
        public void initialize() {
            handler.initialize();
        }

        @Override
        public int run(IoHandlerContext context) {
            turns++;
            QuietContext q = quiet;
            if (q == null || q.context() != context) {
                q = quiet = new QuietContext(context, loop);
            }
            return handler.run(q);
        }

        @Override
        public void prepareToDestroy() {
            handler.prepareToDestroy();
        }

        @Override
        public void destroy() {
            HANDLERS.remove(loop); // the handler holds its loop: a weak key alone would never let go
            handler.destroy();
        }

        @Override
        public IoRegistration register(IoHandle handle) throws Exception {
            return handler.register(handle);
        }

        @Override
        public void wakeup() {
            handler.wakeup();
        }

        @Override
        public boolean isCompatible(Class<? extends IoHandle> handleType) {
            return handler.isCompatible(handleType);
        }
    }

    private record Implementation(io.vertx.core.spi.transport.Transport uring)
            implements io.vertx.core.spi.transport.Transport {
        @Override
        public IoHandlerFactory ioHandlerFactory() {
            IoHandlerFactory factory = uring.ioHandlerFactory();
            if (NEXT_DEADLINE == null) {
                return factory;
            }
            return new IoHandlerFactory() {
                @Override
                public IoHandler newHandler(ThreadAwareExecutor executor) {
                    IoHandler handler = factory.newHandler(executor);
                    return executor instanceof AbstractScheduledEventExecutor loop
                            ? new QuietHandler(handler, loop) : handler;
                }

                @Override
                public boolean isChangingThreadSupported() {
                    return factory.isChangingThreadSupported();
                }
            };
        }

        @Override
        public boolean supportsDomainSockets() {
            return uring.supportsDomainSockets();
        }

        @Override
        public boolean supportFileRegion() {
            return uring.supportFileRegion();
        }

        @Override
        public boolean isAvailable() {
            return uring.isAvailable();
        }

        @Override
        public Throwable unavailabilityCause() {
            return uring.unavailabilityCause();
        }

        @Override
        public java.net.SocketAddress convert(SocketAddress address) {
            return uring.convert(address);
        }

        @Override
        public SocketAddress convert(java.net.SocketAddress address) {
            return uring.convert(address);
        }

        @Override
        public DatagramChannel datagramChannel() {
            return uring.datagramChannel();
        }

        @Override
        public DatagramChannel datagramChannel(InternetProtocolFamily family) {
            return uring.datagramChannel(family);
        }

        @Override
        public ChannelFactory<? extends Channel> channelFactory(boolean domainSocket) {
            return uring.channelFactory(domainSocket);
        }

        @Override
        public ChannelFactory<? extends ServerChannel> serverChannelFactory(boolean domainSocket) {
            return uring.serverChannelFactory(domainSocket);
        }

        @Override
        public void configure(DatagramChannel channel, DatagramSocketOptions options) {
            uring.configure(channel, options);
        }

        @Override
        public void configure(ClientOptionsBase options, int connectTimeout, boolean domainSocket,
                              Bootstrap bootstrap) {
            uring.configure(options, connectTimeout, domainSocket, bootstrap);
        }

        @Override
        public void configure(NetServerOptions options, boolean domainSocket, ServerBootstrap bootstrap) {
            uring.configure(options, domainSocket, bootstrap);
        }
    }
}
