package io.nbdgate.gateway.device;

import static org.junit.jupiter.api.Assertions.assertTrue;

import io.nbdgate.ublk.DeviceNodes;
import io.vertx.core.Vertx;
import io.vertx.core.VertxOptions;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Tag;

/** A Vert.x on io_uring for the queues, the device under test, and the rule that none is left behind. */
@Tag("ublk")
abstract class DeviceGuestTestBase {
    protected Vertx vertx;
    protected NbdDevice device;

    @BeforeEach
    void startVertx() {
        vertx = QuietUringTransport.vertx(new VertxOptions());
    }

    @AfterEach
    void closeEverything() throws Exception {
        if (device != null) {
            device.close();
            device = null;
        }
        afterDeviceClosed();
        // Event loops shut down gracefully; under TCG that alone can take several seconds.
        vertx.close().toCompletionStage().toCompletableFuture().get(60, TimeUnit.SECONDS);
        assertTrue(DeviceNodes.presentDevices().isEmpty(), "ublk devices left behind: " + DeviceNodes.presentDevices());
    }

    /** Runs once the device is gone, e.g. to stop the server it used. */
    protected void afterDeviceClosed() throws Exception {
    }

    protected NbdDevice attach(DeviceOptions options) throws Exception {
        device = NbdDevice.attach(options, EventLoops.of(vertx));
        return device;
    }
}
