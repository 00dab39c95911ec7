package io.nbdgate.gateway.device;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import org.junit.jupiter.api.Test;

/** When the daemon deletes an orphan: unclaimed, and seen for the whole timeout. */
class OrphanSweepTest {
    private static final Instant T0 = Instant.parse("2026-12-05T10:00:00Z");

    private final List<DeviceRecord> orphans = new ArrayList<>();
    private final List<String> removed = new ArrayList<>();
    private final OrphanSweep.Kernel kernel = new OrphanSweep.Kernel() {
        @Override
        public List<DeviceRecord> orphans() {
            return List.copyOf(orphans);
        }

        @Override
        public void remove(DeviceRecord orphan) {
            removed.add(orphan.name());
            orphans.remove(orphan);
        }
    };

    private static DeviceRecord orphan(String name, int id) {
        return new DeviceRecord(name, id, "export '' at /10.0.0.1:10809", new ProcessIdentity(99999, 1), T0);
    }

    @Test
    void anUnclaimedOrphanIsDeletedOnceTheTimeoutHasPassedSinceItWasFirstSeen() {
        OrphanSweep sweep = new OrphanSweep(kernel, Duration.ofMinutes(10), () -> Set.of("mine"));
        orphans.add(orphan("stray", 1));
        orphans.add(orphan("mine", 2));
        assertEquals(List.of(), sweep.sweep(T0));
        assertEquals(List.of(), sweep.sweep(T0.plus(Duration.ofMinutes(9))));
        assertEquals(List.of("stray"), sweep.sweep(T0.plus(Duration.ofMinutes(10))));
        assertEquals(List.of("stray"), removed);
        assertEquals(List.of(), sweep.sweep(T0.plus(Duration.ofHours(5))), "a claimed orphan is the daemon's");
    }

    @Test
    void anOrphanTakenOverMeanwhileStartsAfreshWhenItIsOrphanedAgain() {
        OrphanSweep sweep = new OrphanSweep(kernel, Duration.ofMinutes(10), Set::of);
        DeviceRecord r = orphan("stray", 1);
        orphans.add(r);
        sweep.sweep(T0);
        orphans.clear(); // taken over by an attach process
        sweep.sweep(T0.plus(Duration.ofMinutes(5)));
        orphans.add(r); // and that one died too
        assertEquals(List.of(), sweep.sweep(T0.plus(Duration.ofMinutes(11))));
        assertEquals(List.of("stray"), sweep.sweep(T0.plus(Duration.ofMinutes(21))));
    }

    @Test
    void aNameClaimedByAReloadIsNoLongerSwept() {
        Set<String>[] claimed = new Set[] {Set.of()};
        OrphanSweep sweep = new OrphanSweep(kernel, Duration.ofMinutes(1), () -> claimed[0]);
        orphans.add(orphan("later", 3));
        sweep.sweep(T0);
        claimed[0] = Set.of("later");
        assertEquals(List.of(), sweep.sweep(T0.plus(Duration.ofMinutes(2))));
    }

    @Test
    void thePeriodIsATenthOfTheTimeoutWithinOneAndThirtySeconds() {
        assertEquals(Duration.ofSeconds(30), new OrphanSweep(kernel, Duration.ofMinutes(10), Set::of).period());
        assertEquals(Duration.ofSeconds(6), new OrphanSweep(kernel, Duration.ofMinutes(1), Set::of).period());
        assertEquals(Duration.ofSeconds(1), new OrphanSweep(kernel, Duration.ofSeconds(3), Set::of).period());
    }
}
