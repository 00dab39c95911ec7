package io.nbdgate.gateway.device;

import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.function.Supplier;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The daemon's care of orphans that its file does not claim: each is kept, its I/O held, for the orphan timeout
 * after the daemon first saw it (time for `nbdgate attach --name` to take it over), then deleted with one ERROR
 * line, its held I/O failing. Only devices of the state directory are considered: a ublk device of another
 * program has no record and is never touched.
 */
public final class OrphanSweep {
    private static final Logger LOG = LoggerFactory.getLogger(OrphanSweep.class);

    /** What the sweep works on; the real one lists and removes through {@link Orphans}. */
    public interface Kernel {
        List<DeviceRecord> orphans();

        void remove(DeviceRecord orphan) throws Exception;
    }

    private final Kernel kernel;
    private final Duration timeout;
    private final Supplier<Set<String>> claimed;
    private final Map<String, Instant> firstSeen = new HashMap<>();

    public OrphanSweep(Kernel kernel, Duration timeout, Supplier<Set<String>> claimed) {
        this.kernel = kernel;
        this.timeout = timeout;
        this.claimed = claimed;
    }

    /** The orphans of {@code records}, removed by force (an orphan past its time is deleted in use or not). */
    public static Kernel of(DeviceRecords records) {
        return new Kernel() {
            @Override
            public List<DeviceRecord> orphans() {
                return Orphans.list(records);
            }

            @Override
            public void remove(DeviceRecord orphan) throws Exception {
                Orphans.remove(records, orphan, DetachMode.FORCE);
            }
        };
    }

    /** One pass at {@code now}; returns the names deleted. */
    public synchronized List<String> sweep(Instant now) {
        Set<String> mine = claimed.get();
        Map<String, DeviceRecord> unclaimed = new HashMap<>();
        for (DeviceRecord r : kernel.orphans()) {
            if (!mine.contains(r.name())) {
                unclaimed.put(r.name() + "@" + r.devId(), r);
            }
        }
        firstSeen.keySet().retainAll(unclaimed.keySet()); // taken over, detached, or claimed by a reload meanwhile
        List<String> deleted = new ArrayList<>();
        unclaimed.forEach((key, r) -> {
            Instant seen = firstSeen.computeIfAbsent(key, k -> {
                LOG.warn("{}: {} was left by pid {}, which died; no device of the config is named so. It is kept "
                        + "{} for a take-over (nbdgate attach URI --name {}), then deleted", r.name(), r.blockDevice(),
                        r.owner().pid(), timeout, r.name());
                return now;
            });
            if (!now.isBefore(seen.plus(timeout))) {
                try {
                    kernel.remove(r);
                    deleted.add(r.name());
                    LOG.error("{}: deleted the orphan {} left by pid {}: nothing took it over in {}; I/O it still "
                            + "held failed", r.name(), r.blockDevice(), r.owner().pid(), timeout);
                } catch (Exception e) {
                    LOG.error("{}: deleting the orphan {}: {}", r.name(), r.blockDevice(), e.getMessage());
                }
            }
        });
        deleted.forEach(name -> firstSeen.keySet().removeIf(k -> k.startsWith(name + "@")));
        return deleted;
    }

    /** How often the daemon sweeps: often enough that an orphan goes within a tenth of its timeout after it. */
    public Duration period() {
        Duration tenth = timeout.dividedBy(10);
        return tenth.compareTo(Duration.ofSeconds(1)) < 0 ? Duration.ofSeconds(1)
                : tenth.compareTo(Duration.ofSeconds(30)) > 0 ? Duration.ofSeconds(30) : tenth;
    }
}
