package io.nbdgate.gateway.systemd;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** conf/nbdgate.service as systemd reads it: systemd-analyze verify has nothing to say about it. */
class ServiceUnitTest {
    private static final Path ROOT = Path.of(System.getProperty("nbdgate.root"));

    @TempDir
    Path dir;

    @Test
    void theShippedUnitVerifiesCleanly() throws Exception {
        String unit = Files.readString(ROOT.resolve("conf/nbdgate.service"));
        // verify checks that ExecStart's binary exists: point it at this checkout's launcher (the package puts it
        // at /usr/bin/nbdgate; scripts/lib/check-package.sh checks that).
        assertTrue(unit.contains("ExecStart=/usr/bin/nbdgate daemon"), "the unit runs the packaged launcher");
        Path copy = Files.writeString(dir.resolve("nbdgate.service"),
                unit.replace("/usr/bin/nbdgate", ROOT.resolve("bin/nbdgate").toString()));
        Process p = new ProcessBuilder("systemd-analyze", "verify", copy.toString()).redirectErrorStream(true).start();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertTrue(p.waitFor(60, TimeUnit.SECONDS));
        assertEquals(0, p.exitValue(), out);
        // verify only warns (exit 0) about values it cannot parse, so any output is a failure.
        assertEquals("", out.strip());
        List<String> lines = unit.lines().map(String::strip).toList();
        for (String expected : List.of("Type=notify", "WatchdogSec=30", "SuccessExitStatus=143",
                "Before=remote-fs-pre.target", "Wants=remote-fs-pre.target", "After=network-online.target",
                "Wants=network-online.target")) {
            assertTrue(lines.contains(expected), expected + " missing");
        }
    }
}
