package io.nbdgate.gateway.cli;

import io.nbdgate.gateway.control.ControlServer;
import io.nbdgate.gateway.control.DeviceRegistry;
import io.nbdgate.gateway.device.NbdDevice;
import io.vertx.core.Vertx;
import java.util.concurrent.CountDownLatch;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * What `attach` and `daemon` share once devices are live: the control socket for list/detach, and a
 * clean exit — every device detached — on SIGINT/SIGTERM or when the last device was detached.
 */
final class ServingProcess {
    private static final Logger LOG = LoggerFactory.getLogger(ServingProcess.class);

    private final Vertx vertx;
    // Vert.x 5.0.10 cannot listen on a unix socket with io_uring; the control plane runs on NIO, which also
    // keeps its requests off the queues' event loops.
    private final Vertx controlVertx = Vertx.vertx();
    private final DeviceRegistry registry = new DeviceRegistry();
    private final CountDownLatch done = new CountDownLatch(1);
    private final CountDownLatch cleanedUp = new CountDownLatch(1);
    private final boolean exitWhenEmpty;
    private ControlServer control;

    ServingProcess(Vertx vertx, boolean exitWhenEmpty) {
        this.vertx = vertx;
        this.exitWhenEmpty = exitWhenEmpty;
    }

    DeviceRegistry registry() {
        return registry;
    }

    /** Starts the control socket; without it the devices still work, only list/detach cannot find them. */
    void start(String statusListen) {
        control = new ControlServer(controlVertx, registry, d -> {
            if (exitWhenEmpty && registry.isEmpty()) {
                done.countDown();
            }
        });
        try {
            control.start().await();
        } catch (Exception e) {
            LOG.warn("control socket unavailable ({}); 'nbdgate list' and 'detach' will not see these devices",
                    e.getMessage());
        }
        if (statusListen != null) {
            try {
                control.listenStatus(statusListen).await();
                LOG.info("status on http://{}/devices", statusListen);
            } catch (Exception e) {
                LOG.warn("status endpoint {} unavailable: {}", statusListen, e.getMessage());
            }
        }
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            done.countDown();
            try {
                cleanedUp.await();
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }, "nbdgate-shutdown"));
    }

    /** Blocks until a signal or the last detach, then detaches what is left and stops. */
    void awaitAndCleanUp() {
        try {
            done.await();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        for (NbdDevice d : registry.all()) {
            registry.remove(d.name());
            d.close();
        }
        control.stop();
        controlVertx.close().await();
        vertx.close().await();
        cleanedUp.countDown();
    }
}
