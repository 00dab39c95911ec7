package io.nbdgate.gateway.device;

import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The thread table of docs/ARCHITECTURE.md as CliGuestTest reads it, and names cut to 15 bytes as /proc has them. */
class ServingThreadsTest {
    private static final Path ARCHITECTURE = Path.of("../docs/ARCHITECTURE.md");

    @Test
    void theDocumentedTableIsReadAndNamesMatchWholeOrCut() throws Exception {
        List<Pattern> names = ServingThreads.documented(ARCHITECTURE);
        assertTrue(names.stream().anyMatch(n -> ServingThreads.matches(n, "vert.x-eventloo")), names::toString);
        assertTrue(names.stream().anyMatch(n -> ServingThreads.matches(n, "nbdgate-timeout")), names::toString);
        assertTrue(names.stream().anyMatch(n -> ServingThreads.matches(n, "java")), names::toString);
        assertFalse(names.stream().anyMatch(n -> ServingThreads.matches(n, "nbdgate-mystery")), names::toString);
    }

    @Test
    void aNumberedNameMatchesOnlyWithANumberAndAShortNameOnlyWhole(@TempDir Path dir) throws Exception {
        Path doc = dir.resolve("A.md");
        Files.writeString(doc, """
                ## Threads of a serving process
                | Thread | Why |
                |---|---|
                | `tls-rx-<n>`, `ab` | x |
                ## Next
                | `not-this` | y |
                """);
        List<Pattern> names = ServingThreads.documented(doc);
        assertTrue(ServingThreads.matches(names.get(0), "tls-rx-12"));
        assertFalse(ServingThreads.matches(names.get(0), "tls-rx-x"));
        assertTrue(ServingThreads.matches(names.get(1), "ab"));
        assertFalse(ServingThreads.matches(names.get(1), "a"), "a name shorter than 15 bytes is whole");
        assertFalse(names.stream().anyMatch(n -> ServingThreads.matches(n, "not-this")), "only the section's table");
    }
}
