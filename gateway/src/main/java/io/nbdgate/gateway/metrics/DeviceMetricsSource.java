package io.nbdgate.gateway.metrics;

import io.nbdgate.gateway.session.LinkStatus;
import java.util.List;

/**
 * What /metrics reports of one device, read at scrape time from any thread. A served device is one; a test
 * can be another without a kernel.
 */
public interface DeviceMetricsSource {
    /** The device's name: the {@code device} label. */
    String name();

    /** The buffer mode in use ("zero-copy", "user-copy", "copy"). */
    String bufferMode();

    /** Requests each queue holds at most. */
    int queueDepth();

    /** One per queue, in queue order; the list does not change while the device is served. */
    List<QueueCounters> queueCounters();

    /** Each queue's connection, in queue order. */
    List<LinkStatus> linkStates();

    /** The device as a whole, one of {@link Metrics#DEVICE_STATES}. */
    String state();
}
