package io.nbdgate.ublk.guest;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.TreeSet;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;

/**
 * scripts/test-ublk gives guests running side by side shares of the ublk tests by class name: a ublk test
 * class not named *GuestTest would silently run nowhere, and the minutes file must name real classes.
 */
class UblkTestSharesTest {
    private static final Path ROOT = Path.of(System.getProperty("nbdgate.root"));
    private static final Pattern UBLK = Pattern.compile("@Tag\\(\"ublk\"\\)|extends \\w+GuestTestBase\\b");

    private static List<Path> testSources() throws IOException {
        List<Path> all = new ArrayList<>();
        for (String module : List.of("protocol", "ublk-bridge", "gateway")) {
            Path dir = ROOT.resolve(module).resolve("src/test/java");
            try (Stream<Path> s = Files.walk(dir)) {
                s.filter(p -> p.toString().endsWith(".java")).forEach(all::add);
            }
        }
        return all;
    }

    @Test
    void everyUblkTestClassIsNamedGuestTest() throws IOException {
        List<String> misnamed = new ArrayList<>();
        int found = 0;
        for (Path p : testSources()) {
            String text = Files.readString(p);
            if (!UBLK.matcher(text).find() || text.contains("abstract class")) {
                continue;
            }
            found++;
            if (!p.getFileName().toString().endsWith("GuestTest.java")) {
                misnamed.add(ROOT.relativize(p).toString());
            }
        }
        assertTrue(found >= 10, "only " + found + " ublk test classes found: the scan is broken");
        assertEquals(List.of(), misnamed, "ublk test classes that test-ublk's shares would leave out");
    }

    /** A guest test the host layer runs fails there (no /dev/ublk-control), so its tag must be excluded. */
    @Test
    void theHostLayerExcludesEveryGuestTestsTag() throws IOException {
        Matcher excluded = Pattern.compile("<test.excludedGroups>([^<]*)</test.excludedGroups>")
                .matcher(Files.readString(ROOT.resolve("pom.xml")));
        assertTrue(excluded.find(), "pom.xml has no test.excludedGroups");
        Set<String> hostSkips = Set.of(excluded.group(1).split(","));
        Pattern tag = Pattern.compile("@Tag\\(\"([^\"]+)\"\\)");
        List<String> runOnHost = new ArrayList<>();
        for (Path p : testSources()) {
            String text = Files.readString(p);
            if (!p.getFileName().toString().endsWith("GuestTest.java") || text.contains("abstract class")) {
                continue;
            }
            boolean skipped = text.matches("(?s).*extends \\w+GuestTestBase\\b.*");
            for (Matcher m = tag.matcher(text); m.find(); ) {
                skipped |= hostSkips.contains(m.group(1));
            }
            if (!skipped) {
                runOnHost.add(ROOT.relativize(p).toString());
            }
        }
        assertEquals(List.of(), runOnHost, "guest tests the host layer would run (tags not in " + hostSkips + ")");
    }

    @Test
    void theMinutesFileNamesRealGuestTests() throws IOException {
        Set<String> classes = new TreeSet<>();
        for (Path p : testSources()) {
            String name = p.getFileName().toString();
            if (name.endsWith("GuestTest.java")) {
                classes.add(name.substring(0, name.length() - ".java".length()));
            }
        }
        for (String line : Files.readAllLines(ROOT.resolve("scripts/lib/ublk-test-minutes"))) {
            if (line.isBlank() || line.startsWith("#")) {
                continue;
            }
            String[] f = line.trim().split("\\s+");
            assertEquals(2, f.length, "line '" + line + "'");
            assertTrue(classes.contains(f[0]), f[0] + " is no *GuestTest class");
            assertTrue(f[1].matches("[1-9][0-9]*"), "minutes of " + f[0] + ": " + f[1]);
        }
    }
}
