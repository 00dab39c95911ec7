package io.nbdgate.gateway.device;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Instant;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The state directory and the owner identity that decide whether a device is an orphan. */
class DeviceRecordsTest {
    @TempDir
    Path dir;

    @Test
    void aRecordReadsBackAsWrittenAndIsReplacedWhole() {
        DeviceRecords records = new DeviceRecords(dir.resolve("devices"));
        DeviceRecord a = new DeviceRecord("disk", 3, "export '' at /10.0.0.1:10809", ProcessIdentity.current(),
                Instant.parse("2026-12-05T10:00:00Z"));
        records.write(a);
        assertEquals(Optional.of(a), records.read("disk"));
        DeviceRecord b = new DeviceRecord("disk", 4, a.export(), new ProcessIdentity(1, 2), a.since());
        records.write(b);
        assertEquals(List.of(b), records.all());
        assertEquals(List.of("disk.state"), names(dir.resolve("devices")), "no temporary file is left");
    }

    @Test
    void deleteLeavesARecordThatASuccessorRewroteForAnotherDevice() {
        DeviceRecords records = new DeviceRecords(dir);
        DeviceRecord r = new DeviceRecord("disk", 4, "x", ProcessIdentity.current(), Instant.now());
        records.write(r);
        records.delete("disk", 3);
        assertTrue(records.read("disk").isPresent(), "device 3 is not what the record names");
        records.delete("disk", 4);
        assertFalse(records.read("disk").isPresent());
    }

    @Test
    void anUnreadableRecordIsSkippedAndAMissingDirectoryIsEmpty() throws Exception {
        DeviceRecords records = new DeviceRecords(dir);
        assertEquals(List.of(), new DeviceRecords(dir.resolve("none")).all());
        Files.writeString(dir.resolve("broken.state"), "name=broken\ndevice-id=x\n");
        Files.writeString(dir.resolve("partial.state"), "name=partial\ndevice-id=1\n");
        DeviceRecord ok = new DeviceRecord("ok", 1, "x", ProcessIdentity.current(), Instant.now());
        records.write(ok);
        assertEquals(List.of(ok), records.all());
    }

    @Test
    void aDefaultNameSkipsNamesThatALiveProcessServesOrAnOrphanOfAnotherExportHolds() {
        List<Integer> present = new java.util.ArrayList<>(List.of(0, 1, 2));
        DeviceRecords records = new DeviceRecords(dir, r -> present.contains(r.devId()));
        assertEquals("nbd", records.unusedName("nbd", "x"));
        ProcessIdentity dead = new ProcessIdentity(ProcessIdentity.current().pid(), -5);
        records.write(new DeviceRecord("nbd", 0, "x", ProcessIdentity.current(), Instant.now()));
        records.write(new DeviceRecord("nbd-2", 1, "y", dead, Instant.now()));
        records.write(new DeviceRecord("nbd-3", 2, "x", dead, Instant.now()));
        assertEquals("nbd-3", records.unusedName("nbd", "x"), "served, orphan of another export, then ours");
        assertEquals("nbd-4", records.unusedName("nbd", "z"));
        assertEquals(List.of("nbd-2", "nbd-3"), Orphans.list(records).stream().map(DeviceRecord::name).toList());
        present.remove(Integer.valueOf(0));
        assertEquals("nbd", records.unusedName("nbd", "z"), "a record whose device is gone holds nothing");
    }

    @Test
    void aProcessIsAliveOnlyWithItsOwnStartTime() throws Exception {
        ProcessIdentity me = ProcessIdentity.current();
        assertTrue(me.alive());
        assertFalse(new ProcessIdentity(me.pid(), me.startTicks() + 1).alive(), "same pid, another process");
        Process child = new ProcessBuilder("sleep", "60").start();
        ProcessIdentity c = new ProcessIdentity(child.pid(), ProcessIdentity.startTicks(child.pid()));
        assertTrue(c.alive());
        child.destroyForcibly();
        child.waitFor(10, TimeUnit.SECONDS);
        assertFalse(c.alive(), "a killed process is gone");
    }

    @Test
    void startTimeIsFoundPastACommandNameWithSpacesAndParentheses() {
        String stat = "1234 (we ) ird) S 1 1234 1234 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 987654 1000 10";
        assertEquals(987654, ProcessIdentity.startTicks(stat));
    }

    private static List<String> names(Path d) {
        try (var s = Files.list(d)) {
            return s.map(p -> p.getFileName().toString()).sorted().toList();
        } catch (Exception e) {
            throw new AssertionError(e);
        }
    }
}
