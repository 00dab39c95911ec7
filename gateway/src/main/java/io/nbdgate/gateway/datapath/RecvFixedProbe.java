package io.nbdgate.gateway.datapath;

import io.netty.channel.IoEvent;
import io.netty.channel.IoEventLoop;
import io.netty.channel.IoRegistration;
import io.netty.channel.uring.IoUringIoEvent;
import io.netty.channel.uring.IoUringIoHandle;
import io.netty.channel.uring.IoUringIoOps;
import java.util.concurrent.CompletableFuture;

/**
 * Asks the kernel whether io_uring RECV takes IORING_RECVSEND_FIXED_BUF (new in Linux 7.2; EINVAL
 * before), which zero-copy reads need. It receives on a fresh UDP socket with MSG_DONTWAIT: a kernel
 * that knows the flag fails later (no data, or no buffer at that index), one that doesn't says EINVAL.
 */
public final class RecvFixedProbe implements IoUringIoHandle {
    private static final int AF_INET = 2, SOCK_DGRAM = 2, SOCK_CLOEXEC = 0x80000, MSG_DONTWAIT = 0x40;
    private static final int EINVAL = 22;
    private static final short K_SOCKET = 1, K_RECV = 2, K_CLOSE = 3;

    private final CompletableFuture<Boolean> result = new CompletableFuture<>();
    private IoRegistration reg;
    private int fd = -1;

    private RecvFixedProbe() {
    }

    /** True when RECV on a fixed buffer works on {@code loop}'s ring. */
    public static CompletableFuture<Boolean> run(IoEventLoop loop) {
        RecvFixedProbe p = new RecvFixedProbe();
        loop.register(p).addListener(f -> {
            if (!f.isSuccess()) {
                p.result.completeExceptionally(f.cause());
                return;
            }
            loop.execute(() -> {
                p.reg = (IoRegistration) f.getNow();
                p.reg.submit(new IoUringIoOps(NbdRingConnection.OP_SOCKET, (byte) 0, (short) 0, AF_INET,
                        SOCK_DGRAM | SOCK_CLOEXEC, 0, 0, 0, K_SOCKET, (short) 0, (short) 0, 0, 0));
            });
        });
        return p.result;
    }

    @Override
    public void handle(IoRegistration registration, IoEvent event) {
        IoUringIoEvent e = (IoUringIoEvent) event;
        switch (e.data()) {
            case K_SOCKET -> {
                if (e.res() < 0) {
                    result.completeExceptionally(new IllegalStateException("probe socket failed: " + e.res()));
                    reg.cancel();
                    return;
                }
                fd = e.res();
                // Index 0, address 0, 1 byte: never valid memory to write, so a supporting kernel fails with EFAULT or EAGAIN.
                reg.submit(new IoUringIoOps(NbdRingConnection.OP_RECV, (byte) 0, NbdRingConnection.RECVSEND_FIXED_BUF,
                        fd, 0, 0, 1, MSG_DONTWAIT, K_RECV, (short) 0, (short) 0, 0, 0));
            }
            case K_RECV -> {
                result.complete(e.res() != -EINVAL);
                reg.submit(new IoUringIoOps(NbdRingConnection.OP_CLOSE, (byte) 0, (short) 0, fd, 0, 0, 0, 0, K_CLOSE,
                        (short) 0, (short) 0, 0, 0));
            }
            default -> reg.cancel();
        }
    }

    @Override
    public void close() {
        result.complete(false);
    }
}
