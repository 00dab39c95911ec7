package io.nbdgate.gateway.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import org.junit.jupiter.api.Test;

/** {@code nbdgate udev-owner}: what udev may hand it. The ownership itself is proven in RootlessGuestTest. */
class UdevOwnerCommandTest {
    @Test
    void aNameThatIsNoUblkNodeIsRefusedWithOneLineAndExitCode2() {
        PrintStream oldErr = System.err;
        ByteArrayOutputStream err = new ByteArrayOutputStream();
        try {
            System.setErr(new PrintStream(err, true, StandardCharsets.UTF_8));
            for (String bad : new String[] {"sda", "ublkb", "ublkc1x", "../ublkc1", "ublk-control"}) {
                err.reset();
                assertEquals(2, Main.run("udev-owner", bad), bad);
                String line = err.toString(StandardCharsets.UTF_8);
                assertTrue(line.contains("is not a ublk node name") && line.lines().count() == 1, line);
            }
        } finally {
            System.setErr(oldErr);
        }
    }
}
