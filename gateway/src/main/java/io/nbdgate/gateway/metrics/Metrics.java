package io.nbdgate.gateway.metrics;

import io.micrometer.core.instrument.Gauge;
import io.micrometer.core.instrument.binder.jvm.ClassLoaderMetrics;
import io.micrometer.core.instrument.binder.jvm.JvmGcMetrics;
import io.micrometer.core.instrument.binder.jvm.JvmMemoryMetrics;
import io.micrometer.core.instrument.binder.jvm.JvmThreadMetrics;
import io.micrometer.core.instrument.binder.system.ProcessorMetrics;
import io.micrometer.core.instrument.binder.system.UptimeMetrics;
import io.micrometer.prometheusmetrics.PrometheusConfig;
import io.micrometer.prometheusmetrics.PrometheusMeterRegistry;
import java.util.Collection;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.function.IntSupplier;

/**
 * What GET /metrics answers, in Prometheus text format: each bound device's series ({@link DeviceMeters}, the
 * latency histograms of {@link LatencyCollector}), the devices by state, and the JVM's memory, GC, threads and
 * classes through Micrometer's binders. Everything is read at scrape time; the data path only writes its
 * {@link QueueCounters}.
 */
public final class Metrics implements AutoCloseable {
    /** The values of the {@code state} label of {@code nbdgate_devices}. */
    public static final String[] DEVICE_STATES = {"connected", "reconnecting", "failed", "closed", "removed"};
    /** The Content-Type of {@link #scrape()}: the Prometheus text format 0.0.4. */
    public static final String CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8";

    private final PrometheusMeterRegistry registry = new PrometheusMeterRegistry(PrometheusConfig.DEFAULT);
    private final Map<String, DeviceMeters> devices = new ConcurrentHashMap<>();
    private final JvmGcMetrics gc = new JvmGcMetrics();
    private volatile IntSupplier notAttached = () -> 0;

    public Metrics() {
        new JvmMemoryMetrics().bindTo(registry);
        gc.bindTo(registry);
        new JvmThreadMetrics().bindTo(registry);
        new ClassLoaderMetrics().bindTo(registry);
        new ProcessorMetrics().bindTo(registry);
        new UptimeMetrics().bindTo(registry);
        for (String state : DEVICE_STATES) {
            Gauge.builder("nbdgate.devices", devices, d -> count(d.values(), state))
                    .description("Devices served by this process, by state").tag("state", state)
                    .strongReference(true).register(registry);
        }
        Gauge.builder("nbdgate.devices", this, m -> m.notAttached.getAsInt())
                .description("Devices served by this process, by state").tag("state", "not_attached")
                .strongReference(true).register(registry);
        registry.getPrometheusRegistry().register(new LatencyCollector(devices.values()));
    }

    private static double count(Collection<DeviceMeters> all, String state) {
        return all.stream().filter(d -> d.source().state().equals(state)).count();
    }

    /** Where the count of devices of the config file that could not be attached comes from (a daemon's). */
    public void notAttached(IntSupplier count) {
        notAttached = count;
    }

    /** Reports {@code source} from now on, in place of an earlier device of the same name. */
    public void bind(DeviceMetricsSource source) {
        DeviceMeters added = new DeviceMeters(source, registry);
        DeviceMeters old = devices.put(source.name(), added);
        if (old != null) {
            old.remove(); // first: Micrometer would hand back the old meters, of the same names and tags
        }
        added.register();
    }

    /** Stops reporting {@code source}; nothing if another device of its name took its place. */
    public void unbind(DeviceMetricsSource source) {
        DeviceMeters m = devices.get(source.name());
        if (m != null && m.source() == source && devices.remove(source.name(), m)) {
            m.remove();
        }
    }

    /** The scrape body ({@link #CONTENT_TYPE}). */
    public String scrape() {
        for (DeviceMeters d : devices.values()) {
            d.addNewErrnos();
        }
        return registry.scrape();
    }

    @Override
    public void close() {
        gc.close();
        registry.close();
    }
}
