package io.nbdgate.gateway.link;

import io.netty.channel.IoEvent;
import io.netty.channel.IoEventLoop;
import io.netty.channel.IoRegistration;
import io.netty.channel.uring.IoUringIoEvent;
import io.netty.channel.uring.IoUringIoHandle;
import io.netty.channel.uring.IoUringIoHandler;
import io.nbdgate.uring.Errno;
import io.nbdgate.uring.NettyRing;
import io.nbdgate.uring.RingSubmitter;
import io.nbdgate.uring.UserData;
import java.util.concurrent.CompletableFuture;

/**
 * Asks the kernel whether io_uring RECV takes IORING_RECVSEND_FIXED_BUF (new in Linux 7.2; EINVAL
 * before), which zero-copy reads need. It receives on a fresh UDP socket with MSG_DONTWAIT: a kernel
 * that knows the flag fails later (no data, or no buffer at that index), one that doesn't says EINVAL.
 */
public final class RecvFixedProbe implements IoUringIoHandle {
    private static final int AF_INET = 2, SOCK_DGRAM = 2, SOCK_CLOEXEC = 0x80000, MSG_DONTWAIT = 0x40;
    private static final int K_SOCKET = 1, K_RECV = 2, K_CLOSE = 3;

    private final CompletableFuture<Boolean> result = new CompletableFuture<>();
    private IoRegistration reg;
    private RingSubmitter sqes;
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
                p.sqes = new RingSubmitter(p.reg, NettyRing.of((IoUringIoHandler) p.reg.attachment(),
                        NettyRing.DEFAULT_BUFFER_SLOTS));
                p.sqes.socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, UserData.encode(K_SOCKET, 0));
            });
        });
        return p.result;
    }

    @Override
    public void handle(IoRegistration registration, IoEvent event) {
        IoUringIoEvent e = (IoUringIoEvent) event;
        switch (UserData.kind(e.data())) {
            case K_SOCKET -> {
                if (e.res() < 0) {
                    result.completeExceptionally(new IllegalStateException("probe socket failed: " + e.res()));
                    reg.cancel();
                    return;
                }
                fd = e.res();
                // Index 0, address 0, 1 byte: never valid memory to write, so a supporting kernel fails with EFAULT or EAGAIN.
                sqes.recv((byte) 0, (short) 0, fd, 0, 1, MSG_DONTWAIT, 0, UserData.encode(K_RECV, 0));
            }
            case K_RECV -> {
                result.complete(e.res() != -Errno.EINVAL);
                sqes.close(fd, UserData.encode(K_CLOSE, 0));
            }
            default -> reg.cancel();
        }
    }

    @Override
    public void close() {
        result.complete(false);
    }
}
