package io.nbdgate.gateway.control;

import io.nbdgate.gateway.device.NbdDevice;
import io.nbdgate.gateway.metrics.Metrics;
import io.nbdgate.gateway.session.LinkStatus;
import io.vertx.core.json.JsonArray;
import io.vertx.core.json.JsonObject;
import java.util.Locale;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;

/**
 * The devices one nbdgate process serves, by name; what `nbdgate list` shows and `detach` removes. A device
 * is /dev/nbdgate/NAME while it is here.
 */
public final class DeviceRegistry {
    private final Map<String, NbdDevice> devices = new ConcurrentHashMap<>();
    private final DeviceLinks links;
    /** Created by the first {@link #metrics()} call: a process without a status listener has none. */
    private Metrics metrics;

    /** @param links the by-name links to keep, or null for none */
    public DeviceRegistry(DeviceLinks links) {
        this.links = links;
    }

    public DeviceRegistry() {
        this(null);
    }

    /**
     * Adds a live device. Once it is gone its link goes; so does its entry, unless another process removed it:
     * then it stays, listed as removed, until a detach takes it out (nbdgate never adds it again by itself).
     * Returns a future that completes once that is done: what depends on the registry's state after the device
     * went must hang on it, not on {@link NbdDevice#gone} (whose dependents run in no promised order).
     */
    public CompletableFuture<NbdDevice> add(NbdDevice d) {
        synchronized (this) {
            devices.put(d.name(), d);
            if (metrics != null) {
                metrics.bind(d);
            }
        }
        if (links != null) {
            links.publish(d.name(), d.blockDevice());
        }
        return d.gone().thenApply(x -> {
            if (links != null) {
                links.withdraw(x.name(), x.blockDevice());
            }
            if (x.removedElsewhere() == null) {
                forget(x);
            }
            return x;
        });
    }

    private synchronized void forget(NbdDevice d) {
        if (devices.remove(d.name(), d) && metrics != null) {
            metrics.unbind(d);
        }
    }

    /** What GET /metrics reports: every device here from now on (the first call binds those already here). */
    public synchronized Metrics metrics() {
        if (metrics == null) {
            metrics = new Metrics();
            devices.values().forEach(metrics::bind);
        }
        return metrics;
    }

    /** Ends the metrics (their JVM listeners), if any were made. */
    public synchronized void closeMetrics() {
        if (metrics != null) {
            metrics.close();
            metrics = null;
        }
    }

    /** Whether some device here is still served (not removed by another process). */
    public boolean anyServed() {
        return devices.values().stream().anyMatch(d -> d.removedElsewhere() == null);
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
        NbdDevice d;
        synchronized (this) {
            d = devices.remove(name);
            if (d != null && metrics != null) {
                metrics.unbind(d);
            }
        }
        if (d != null && links != null) {
            links.withdraw(d.name(), d.blockDevice());
        }
        return Optional.ofNullable(d);
    }

    /** What `list` and systemd's STATUS= say about a device. */
    public static String state(NbdDevice d) {
        return d.stateSummary();
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
                    .put("tls", d.linkStates().getFirst().tls())
                    .put("commands", d.batchIo() ? "batch" : "per-request")
                    .put("replies", d.export().mode().name().toLowerCase(Locale.ROOT))
                    .put("queues", d.queues())
                    .put("depth", d.options().depth())
                    .put("state", state(d))
                    .put("reconnects", d.reconnects())
                    .put("resent", d.resentRequests())
                    .put("links", links(d))
                    .put("pid", ProcessHandle.current().pid()));
        }
        return a;
    }
}
