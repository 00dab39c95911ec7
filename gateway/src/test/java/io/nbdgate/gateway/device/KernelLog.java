package io.nbdgate.gateway.device;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.UUID;

/**
 * The kernel log from a point on: a test writes a mark into /dev/kmsg before a fault and, after it, reads
 * what the block layer said since. The log is not cleared, so earlier tests' lines stay for diagnosis.
 */
final class KernelLog {
    private final String mark;

    private KernelLog(String mark) {
        this.mark = mark;
    }

    /** Writes a unique mark into the kernel log; {@link #linesSince()} starts after it. */
    static KernelLog mark(String what) throws Exception {
        String mark = "nbdgate-test-mark " + what + " " + UUID.randomUUID();
        Files.writeString(Path.of("/dev/kmsg"), mark + "\n");
        return new KernelLog(mark);
    }

    List<String> linesSince() throws Exception {
        List<String> lines = GuestProcesses.run("dmesg").lines().toList();
        int at = -1;
        for (int i = 0; i < lines.size(); i++) {
            if (lines.get(i).contains(mark)) {
                at = i;
            }
        }
        if (at < 0) {
            throw new AssertionError("the mark '" + mark + "' is gone from the kernel log (ring buffer wrapped?)");
        }
        return lines.subList(at + 1, lines.size());
    }

    /** The block layer failed no request of a ublk device since the mark ("I/O error, dev ublkbN"). */
    void assertNoUblkIoErrors() throws Exception {
        List<String> errors = linesSince().stream().filter(l -> l.contains("I/O error, dev ublkb")).toList();
        assertEquals(List.of(), errors, "the kernel failed I/O on a ublk device");
    }
}
