package io.nbdgate.gateway.metrics;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;

import io.nbdgate.gateway.session.LinkStatus;
import io.nbdgate.gateway.testsupport.PrometheusText;
import java.time.Instant;
import java.util.List;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/** Devices coming and going by name: the series always show the device bound now, and go with it. */
class MetricsTest {
    private final Metrics metrics = new Metrics();

    record Fake(String name, List<QueueCounters> queueCounters, LinkStatus.State link) implements DeviceMetricsSource {
        Fake(String name, int reads) {
            this(name, List.of(counted(reads)), LinkStatus.State.CONNECTED);
        }

        static QueueCounters counted(int reads) {
            QueueCounters c = new QueueCounters(4);
            for (int i = 0; i < reads; i++) {
                c.started(0, QueueCounters.READ, 0);
                c.finished(0, 512, 512, 1000);
            }
            return c;
        }

        public String bufferMode() {
            return "copy";
        }

        public int queueDepth() {
            return 4;
        }

        public List<LinkStatus> linkStates() {
            return queueCounters.stream().map(q -> new LinkStatus(link, 0, Instant.now(), null, 0, 0)).toList();
        }

        public String state() {
            return link.name().toLowerCase(java.util.Locale.ROOT);
        }
    }

    @AfterEach
    void close() {
        metrics.close();
    }

    private double reads(PrometheusText m, String device) {
        return m.value("nbdgate_requests_total", "device", device, "op", "read");
    }

    @Test
    void aDeviceOfTheSameNameReplacesTheOldOnesSeriesAndAnUnbindOfTheOldChangesNothing() {
        Fake first = new Fake("disk", 3);
        Fake second = new Fake("disk", 7);
        metrics.bind(first);
        assertEquals(3, reads(PrometheusText.parse(metrics.scrape()), "disk"));
        metrics.bind(second);
        PrometheusText m = PrometheusText.parse(metrics.scrape());
        assertEquals(7, reads(m, "disk"), "the new device's counts, not the old one's");
        assertEquals(7, m.value("nbdgate_request_duration_seconds_count", "device", "disk", "op", "read"));
        assertEquals(1, m.value("nbdgate_devices", "state", "connected"));
        metrics.unbind(first); // the old device's end comes late
        assertEquals(7, reads(PrometheusText.parse(metrics.scrape()), "disk"));
        metrics.unbind(second);
        PrometheusText gone = PrometheusText.parse(metrics.scrape());
        assertFalse(gone.samples.stream().anyMatch(s -> s.labels().containsKey("device")));
        assertEquals(0, gone.value("nbdgate_devices", "state", "connected"));
    }

    @Test
    void devicesAreCountedByStateAndEachKeepsItsOwnSeries() {
        metrics.bind(new Fake("a", 1));
        metrics.bind(new Fake("b", List.of(Fake.counted(2), Fake.counted(5)), LinkStatus.State.FAILED));
        PrometheusText m = PrometheusText.parse(metrics.scrape());
        assertEquals(1, reads(m, "a"));
        assertEquals(7, reads(m, "b"), "summed over the queues");
        assertEquals(2, m.value("nbdgate_queues", "device", "b"));
        assertEquals(1, m.value("nbdgate_devices", "state", "connected"));
        assertEquals(1, m.value("nbdgate_devices", "state", "failed"));
        assertEquals(1, m.value("nbdgate_connection_state", "device", "b", "queue", "0", "state", "failed"));
        assertEquals(0, m.value("nbdgate_devices", "state", "not_attached"));
        metrics.notAttached(() -> 2);
        assertEquals(2, PrometheusText.parse(metrics.scrape()).value("nbdgate_devices", "state", "not_attached"));
    }
}
