package io.nbdgate.gateway.metrics;

import io.micrometer.core.instrument.FunctionCounter;
import io.micrometer.core.instrument.Gauge;
import io.micrometer.core.instrument.Meter;
import io.micrometer.core.instrument.MeterRegistry;
import io.micrometer.core.instrument.Tags;
import io.nbdgate.gateway.session.LinkStatus;
import io.nbdgate.uring.Errno;
import java.util.ArrayList;
import java.util.List;
import java.util.function.ToDoubleFunction;
import java.util.function.ToLongFunction;

/**
 * One device's Micrometer meters, each a function over its {@link DeviceMetricsSource} that runs at scrape time:
 * counts summed over the queues, one connection state per queue. An errno gets its series once a request ended
 * with it, so the page lists the errors that happened rather than every errno there is.
 */
final class DeviceMeters {
    private final DeviceMetricsSource source;
    private final MeterRegistry registry;
    private final Tags device;
    private final List<Meter> meters = new ArrayList<>();
    private final boolean[] errnoShown = new boolean[QueueCounters.MAX_ERRNO + 1];
    private boolean removed;

    DeviceMeters(DeviceMetricsSource source, MeterRegistry registry) {
        this.source = source;
        this.registry = registry;
        this.device = Tags.of("device", source.name());
    }

    DeviceMetricsSource source() {
        return source;
    }

    synchronized void register() {
        for (int i = 0; i < QueueCounters.OPS.length; i++) {
            int op = i;
            Tags tags = device.and("op", QueueCounters.OPS[op]);
            counter("nbdgate.requests", "Requests answered, by operation", tags, null, c -> c.requests(op));
            counter("nbdgate.request.bytes", "Bytes of the requests that succeeded, by operation", tags, "bytes",
                    c -> c.bytes(op));
        }
        gauge("nbdgate.requests.in.flight", "Requests the kernel handed over and nbdgate has not answered yet",
                device, s -> sum(s, QueueCounters::inFlight));
        gauge("nbdgate.queues", "ublk queues, each with its own NBD connection", device,
                s -> s.queueCounters().size());
        gauge("nbdgate.queue.depth", "Requests each queue holds at most", device, DeviceMetricsSource::queueDepth);
        meters.add(FunctionCounter.builder("nbdgate.reconnects", source, s -> links(s, LinkStatus::reconnects))
                .description("Connections lost and replaced (or being replaced), over all queues").tags(device)
                .register(registry));
        meters.add(FunctionCounter.builder("nbdgate.resent.requests", source, s -> links(s, LinkStatus::resent))
                .description("Requests sent again on a new connection after the old one ended without answering")
                .tags(device).register(registry));
        int queues = source.queueCounters().size();
        for (int q = 0; q < queues; q++) {
            int queue = q;
            for (LinkStatus.State state : LinkStatus.State.values()) {
                String label = state.name().toLowerCase(java.util.Locale.ROOT);
                gauge("nbdgate.connection.state", "1 for the state the queue's connection is in, 0 for the others",
                        device.and("queue", Integer.toString(q), "state", label),
                        s -> s.linkStates().get(queue).state() == state ? 1 : 0);
            }
            for (String mode : TLS_MODES) {
                gauge("nbdgate.tls", "1 for where the queue's connection runs TLS (kernel, userspace) or none, 0 for"
                        + " the others", device.and("queue", Integer.toString(q), "mode", mode),
                        s -> tlsMode(s.linkStates().get(queue).tls()).equals(mode) ? 1 : 0);
            }
        }
        gauge("nbdgate.buffer.mode", "1, with the buffer mode the device uses as label", device.and("mode",
                source.bufferMode()), s -> 1);
    }

    private static final List<String> TLS_MODES = List.of("none", "kernel", "userspace");

    /** "kernel" or "userspace" from a link's TLS status ("kernel TLS 1.3 ..."), "none" in plaintext. */
    static String tlsMode(String tls) {
        if (tls == null) {
            return "none";
        }
        int space = tls.indexOf(' ');
        return space < 0 ? tls : tls.substring(0, space);
    }

    /** Registers the errno series of errors seen since the last scrape. Scrape thread. */
    synchronized void addNewErrnos() {
        if (removed) {
            return;
        }
        for (int e = 0; e < errnoShown.length; e++) {
            int errno = e;
            if (!errnoShown[e] && sum(source, c -> c.errors(errno)) > 0) {
                errnoShown[e] = true;
                counter("nbdgate.request.errors", "Requests that failed, by errno", device.and("errno",
                        errnoLabel(e)), null, c -> c.errors(errno));
            }
        }
    }

    static String errnoLabel(int errno) {
        String name = Errno.name(errno);
        return errno == 0 ? "other" : name.equals("errno") ? "errno" + errno : name;
    }

    synchronized void remove() {
        removed = true;
        meters.forEach(registry::remove);
        meters.clear();
    }

    private void counter(String name, String help, Tags tags, String unit, ToLongFunction<QueueCounters> f) {
        meters.add(FunctionCounter.builder(name, source, s -> sum(s, f)).description(help).tags(tags).baseUnit(unit)
                .register(registry));
    }

    private void gauge(String name, String help, Tags tags, ToDoubleFunction<DeviceMetricsSource> f) {
        meters.add(Gauge.builder(name, source, f).description(help).tags(tags).register(registry));
    }

    private static double sum(DeviceMetricsSource s, ToLongFunction<QueueCounters> f) {
        long n = 0;
        for (QueueCounters c : s.queueCounters()) {
            n += f.applyAsLong(c);
        }
        return n;
    }

    private static double links(DeviceMetricsSource s, ToLongFunction<LinkStatus> f) {
        long n = 0;
        for (LinkStatus l : s.linkStates()) {
            n += f.applyAsLong(l);
        }
        return n;
    }
}
