package io.nbdgate.gateway.control;

import io.nbdgate.gateway.device.NbdDevice;
import io.vertx.core.json.JsonArray;
import io.vertx.core.json.JsonObject;
import java.util.Locale;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.ConcurrentHashMap;

/**
 * The devices one nbdgate process serves, by name; what `nbdgate list` shows and `detach` removes. A device
 * is /dev/nbdgate/NAME while it is here.
 */
public final class DeviceRegistry {
    private final Map<String, NbdDevice> devices = new ConcurrentHashMap<>();
    private final DeviceLinks links;

    /** @param links the by-name links to keep, or null for none */
    public DeviceRegistry(DeviceLinks links) {
        this.links = links;
    }

    public DeviceRegistry() {
        this(null);
    }

    public void add(NbdDevice d) {
        devices.put(d.name(), d);
        if (links != null) {
            links.publish(d.name(), d.blockDevice());
        }
    }

    /** The device named {@code nameOrPath}, or whose block device path it is. */
    public Optional<NbdDevice> find(String nameOrPath) {
        NbdDevice d = devices.get(nameOrPath);
        if (d != null) {
            return Optional.of(d);
        }
        return devices.values().stream().filter(x -> x.blockDevice().equals(nameOrPath)).findFirst();
    }

    /** Takes the device out (its by-name link first); the caller closes it. */
    public Optional<NbdDevice> remove(String name) {
        NbdDevice d = devices.remove(name);
        if (d != null && links != null) {
            links.withdraw(d.name(), d.blockDevice());
        }
        return Optional.ofNullable(d);
    }

    /** What `list` and systemd's STATUS= say about a device. */
    public static String state(NbdDevice d) {
        return d.healthy() ? "live" : "server lost";
    }

    public boolean isEmpty() {
        return devices.isEmpty();
    }

    public java.util.Collection<NbdDevice> all() {
        return devices.values();
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
                    .put("state", state(d))
                    .put("pid", ProcessHandle.current().pid()));
        }
        return a;
    }
}
