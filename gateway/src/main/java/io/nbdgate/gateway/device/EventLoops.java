package io.nbdgate.gateway.device;

import io.netty.channel.IoEventLoop;
import io.netty.util.concurrent.EventExecutor;
import io.vertx.core.Vertx;
import io.vertx.core.internal.VertxInternal;
import java.util.ArrayList;
import java.util.List;

/** The event loops of a Vert.x instance, for ublk queues: each queue runs on one of them. */
public final class EventLoops {
    private EventLoops() {
    }

    /** Vert.x's own event loops; fails with one line if Vert.x does not run on io_uring. */
    public static List<IoEventLoop> of(Vertx vertx) {
        if (!vertx.isNativeTransportEnabled()) {
            throw new IllegalStateException("Vert.x is not on the io_uring transport: "
                    + vertx.unavailableNativeTransportCause());
        }
        List<IoEventLoop> loops = new ArrayList<>();
        for (EventExecutor e : ((VertxInternal) vertx).nettyEventLoopGroup()) {
            if (!(e instanceof IoEventLoop l) || !QuietUringTransport.isUring(l)) {
                throw new IllegalStateException("Vert.x event loop " + e + " is not an io_uring loop");
            }
            loops.add(l);
        }
        return loops;
    }
}
