package io.nbdgate.gateway.link;

import static org.junit.jupiter.api.Assertions.assertEquals;

import io.netty.channel.IoEventLoop;
import io.netty.channel.MultiThreadIoEventLoopGroup;
import io.netty.channel.uring.IoUringIoHandler;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/** The probe must match the kernel: RECV on fixed buffers exists from Linux 7.2 on (EINVAL before). */
class RecvFixedProbeTest {
    static boolean kernelAtLeast(int major, int minor) {
        String[] v = System.getProperty("os.version").split("[.-]");
        int ma = Integer.parseInt(v[0]);
        int mi = Integer.parseInt(v[1]);
        return ma > major || (ma == major && mi >= minor);
    }

    @Test
    void probeAgreesWithTheKernelVersion() throws Exception {
        MultiThreadIoEventLoopGroup group = new MultiThreadIoEventLoopGroup(1, IoUringIoHandler.newFactory());
        try {
            boolean supported = RecvFixedProbe.run((IoEventLoop) group.next()).get(10, TimeUnit.SECONDS);
            assertEquals(kernelAtLeast(7, 2), supported, "kernel " + System.getProperty("os.version"));
        } finally {
            group.shutdownGracefully(0, 1, TimeUnit.SECONDS).sync();
        }
    }
}
