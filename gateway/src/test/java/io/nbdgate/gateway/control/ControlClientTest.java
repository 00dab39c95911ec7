package io.nbdgate.gateway.control;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.vertx.core.json.JsonArray;
import io.vertx.core.json.JsonObject;
import java.nio.charset.StandardCharsets;
import java.util.List;
import org.junit.jupiter.api.Test;

/** The CLI's reading of what ControlServer writes (Vert.x's JSON), without Vert.x on the reading side. */
class ControlClientTest {

    @Test
    void readsTheDeviceListAsTheServerWritesIt() throws Exception {
        JsonArray written = new JsonArray()
                .add(new JsonObject().put("name", "disk").put("device", "/dev/ublkb3").put("queues", 2)
                        .put("size", 1L << 40).put("state", "live").put("pid", 4242L))
                .add(new JsonObject().put("name", "quoted \"x\"").put("nested", new JsonObject().put("a", 1))
                        .put("device", "/dev/ublkb4"));
        List<ControlClient.Device> read = ControlClient.parseObjects(written.encode().getBytes(StandardCharsets.UTF_8));
        assertEquals(2, read.size());
        assertEquals("disk", read.get(0).get("name"));
        assertEquals("2", read.get(0).get("queues"));
        assertEquals("1099511627776", read.get(0).get("size"));
        assertEquals("4242", read.get(0).get("pid"));
        // A nested value is skipped whole: the fields after it still belong to the same device.
        assertEquals("quoted \"x\"", read.get(1).get("name"));
        assertEquals("/dev/ublkb4", read.get(1).get("device"));
    }

    @Test
    void readsOneObjectAndNothing() throws Exception {
        List<ControlClient.Device> one = ControlClient.parseObjects(
                new JsonObject().put("error", "no device x").encode().getBytes(StandardCharsets.UTF_8));
        assertEquals("no device x", one.getFirst().get("error"));
        assertTrue(ControlClient.parseObjects(new byte[0]).isEmpty());
        assertTrue(ControlClient.parseObjects("[]".getBytes(StandardCharsets.UTF_8)).isEmpty());
    }
}
