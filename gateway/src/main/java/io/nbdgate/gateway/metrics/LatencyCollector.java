package io.nbdgate.gateway.metrics;

import io.prometheus.metrics.model.registry.MultiCollector;
import io.prometheus.metrics.model.snapshots.ClassicHistogramBuckets;
import io.prometheus.metrics.model.snapshots.HistogramSnapshot;
import io.prometheus.metrics.model.snapshots.Labels;
import io.prometheus.metrics.model.snapshots.MetricSnapshots;
import java.util.Collection;

/**
 * {@code nbdgate_request_duration_seconds}: each device's request latency by operation as a Prometheus histogram,
 * built at scrape time from the queues' fixed buckets. Micrometer has no meter over buckets counted elsewhere
 * (a Timer would count them itself, per request), so this goes straight to the Prometheus registry beneath it.
 */
final class LatencyCollector implements MultiCollector {
    static final String NAME = "nbdgate_request_duration_seconds";
    private static final double[] BOUNDS_SECONDS = new double[QueueCounters.BUCKETS];

    static {
        for (int i = 0; i < QueueCounters.BOUNDS; i++) {
            BOUNDS_SECONDS[i] = QueueCounters.boundNanos(i) / 1e9;
        }
        BOUNDS_SECONDS[QueueCounters.BOUNDS] = Double.POSITIVE_INFINITY;
    }

    private final Collection<DeviceMeters> devices;

    LatencyCollector(Collection<DeviceMeters> devices) {
        this.devices = devices;
    }

    @Override
    public MetricSnapshots collect() {
        HistogramSnapshot.Builder h = HistogramSnapshot.builder().name(NAME)
                .help("Time from a request's arrival from the kernel to its answer, by operation");
        for (DeviceMeters d : devices) {
            DeviceMetricsSource s = d.source();
            for (int op = 0; op < QueueCounters.OPS.length; op++) {
                long[] counts = new long[QueueCounters.BUCKETS];
                long nanos = 0;
                for (QueueCounters c : s.queueCounters()) {
                    for (int b = 0; b < counts.length; b++) {
                        counts[b] += c.bucketCount(op, b);
                    }
                    nanos += c.latencyNanos(op);
                }
                h.dataPoint(HistogramSnapshot.HistogramDataPointSnapshot.builder()
                        .labels(Labels.of("device", s.name(), "op", QueueCounters.OPS[op]))
                        .classicHistogramBuckets(ClassicHistogramBuckets.of(BOUNDS_SECONDS, counts))
                        .sum(nanos / 1e9).build());
            }
        }
        return devices.isEmpty() ? MetricSnapshots.of() : MetricSnapshots.of(h.build());
    }

    @Override
    public java.util.List<String> getPrometheusNames() {
        return java.util.List.of(NAME);
    }
}
