package io.nbdgate.gateway.control;

import io.nbdgate.gateway.device.NbdDevice;
import io.nbdgate.gateway.session.LinkStatus;
import io.vertx.core.json.JsonArray;
import io.vertx.core.json.JsonObject;
import java.util.Locale;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.ConcurrentHashMap;

/** The devices one nbdgate process serves, by name; what `nbdgate list` shows and `detach` removes. */
public final class DeviceRegistry {
    private final Map<String, NbdDevice> devices = new ConcurrentHashMap<>();

    public void add(NbdDevice d) {
        devices.put(d.name(), d);
    }

    /** The device named {@code nameOrPath}, or whose block device path it is. */
    public Optional<NbdDevice> find(String nameOrPath) {
        NbdDevice d = devices.get(nameOrPath);
        if (d != null) {
            return Optional.of(d);
        }
        return devices.values().stream().filter(x -> x.blockDevice().equals(nameOrPath)).findFirst();
    }

    public Optional<NbdDevice> remove(String name) {
        return Optional.ofNullable(devices.remove(name));
    }

    public boolean isEmpty() {
        return devices.isEmpty();
    }

    public java.util.Collection<NbdDevice> all() {
        return devices.values();
    }

    private static JsonArray links(NbdDevice d) {
        JsonArray a = new JsonArray();
        for (LinkStatus s : d.linkStates()) {
            a.add(new JsonObject().put("state", s.label()).put("attempt", s.attempt()).put("since", s.since().toString())
                    .put("lastError", s.lastError()).put("reconnects", s.reconnects()).put("resent", s.resent()));
        }
        return a;
    }

    public JsonArray toJson() {
        JsonArray a = new JsonArray();
        for (NbdDevice d : devices.values()) {
            a.add(new JsonObject()
                    .put("name", d.name())
                    .put("device", d.blockDevice())
                    .put("export", d.options().exportName())
                    .put("server", String.valueOf(d.options().address()))
                    .put("size", d.export().size())
                    .put("mode", d.mode().label())
                    .put("commands", d.batchIo() ? "batch" : "per-request")
                    .put("replies", d.export().mode().name().toLowerCase(Locale.ROOT))
                    .put("queues", d.queues())
                    .put("depth", d.options().depth())
                    .put("state", d.stateSummary())
                    .put("reconnects", d.reconnects())
                    .put("resent", d.resentRequests())
                    .put("links", links(d))
                    .put("pid", ProcessHandle.current().pid()));
        }
        return a;
    }
}
