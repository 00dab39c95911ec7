package io.nbdgate.gateway.config;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.nbdgate.gateway.device.DetachMode;
import io.vertx.core.json.JsonArray;
import io.vertx.core.json.JsonObject;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/** What a reload would do, from the devices served and the file read again. */
class ConfigChangesTest {
    private static DaemonConfig file(JsonObject... devices) throws ConfigException {
        return DaemonConfig.from(new JsonObject().put("devices", new JsonArray(List.of((Object[]) devices))));
    }

    private static JsonObject dev(String name, String uri) {
        return new JsonObject().put("name", name).put("uri", uri);
    }

    @Test
    void addedRemovedAndChangedDevicesAreToldApart() throws Exception {
        DaemonConfig before = file(dev("a", "nbd://h/a"), dev("b", "nbd://h/b"), dev("c", "nbd://h/c"));
        Map<String, DeviceConfig> served = new LinkedHashMap<>();
        before.devices().forEach(d -> served.put(d.name(), d));
        DaemonConfig after = file(dev("a", "nbd://h/a"), dev("c", "nbd://h/other").put("queues", 2)
                .put("timeouts", new JsonObject().put("reconnect", "never")), dev("d", "nbd://h/d"));

        ConfigChanges c = ConfigChanges.between(served, after);
        assertEquals(List.of("d"), c.added().stream().map(DeviceConfig::name).toList());
        assertEquals(List.of("b"), c.removed());
        assertEquals(Map.of("c", List.of("uri", "queues", "reconnect-timeout")), c.changed());
    }

    @Test
    void theSameFileChangesNothing() throws Exception {
        DaemonConfig f = file(dev("a", "nbd://h/a"));
        assertTrue(ConfigChanges.between(Map.of("a", f.devices().getFirst()), f).isEmpty());
    }

    @Test
    void reloadInUseIsRefuseUnlessTheFileSaysOtherwise() throws Exception {
        assertEquals(DetachMode.REFUSE, file(dev("a", "nbd://h/a")).reloadInUse());
        DaemonConfig deferred = DaemonConfig.from(new JsonObject().put("reload", new JsonObject().put("in-use",
                "deferred")).put("devices", new JsonArray().add(dev("a", "nbd://h/a"))));
        assertEquals(DetachMode.DEFERRED, deferred.reloadInUse());
        ConfigException e = org.junit.jupiter.api.Assertions.assertThrows(ConfigException.class, () ->
                DaemonConfig.from(new JsonObject().put("reload", new JsonObject().put("in-use", "later"))
                        .put("devices", new JsonArray().add(dev("a", "nbd://h/a")))));
        assertEquals("reload.in-use: must be refuse, force or deferred, got 'later'", e.getMessage());
    }
}
