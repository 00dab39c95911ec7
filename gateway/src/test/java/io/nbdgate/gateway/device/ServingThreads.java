package io.nbdgate.gateway.device;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;

/**
 * The threads of a serving process against the table in docs/ARCHITECTURE.md ("Threads of a serving
 * process"): every thread the process runs must be listed there. Threads are read from /proc/PID/task/*&#47;comm,
 * which holds the first 15 bytes of a name; a table name's {@code <n>} stands for a number.
 */
final class ServingThreads {
    private static final String SECTION = "## Threads of a serving process";
    private static final int COMM_LENGTH = 15;
    private static final Pattern TABLE_NAME = Pattern.compile("^\\| `([^|]+)` \\|");

    private ServingThreads() {
    }

    /** The documented names as patterns, from the section's table rows. */
    static List<Pattern> documented(Path architecture) throws IOException {
        List<String> lines = Files.readAllLines(architecture);
        int start = lines.indexOf(SECTION);
        if (start < 0) {
            throw new IllegalStateException(architecture + " has no section \"" + SECTION + "\"");
        }
        List<Pattern> names = new ArrayList<>();
        for (String line : lines.subList(start + 1, lines.size())) {
            if (line.startsWith("## ")) {
                break;
            }
            Matcher m = TABLE_NAME.matcher(line);
            if (m.find()) {
                for (String name : m.group(1).split("`, `")) {
                    names.add(Pattern.compile(Pattern.quote(name).replace("<n>", "\\E\\d+\\Q")));
                }
            }
        }
        if (names.isEmpty()) {
            throw new IllegalStateException("the section \"" + SECTION + "\" of " + architecture + " lists no thread");
        }
        return names;
    }

    /** The names of process {@code pid}'s threads as the kernel keeps them (at most 15 bytes). */
    static List<String> of(long pid) throws IOException {
        try (Stream<Path> tasks = Files.list(Path.of("/proc/" + pid + "/task"))) {
            List<String> names = new ArrayList<>();
            for (Path task : tasks.toList()) {
                try {
                    names.add(Files.readString(task.resolve("comm")).strip());
                } catch (IOException ended) {
                    // a thread that ended while we looked
                }
            }
            return names;
        }
    }

    /** Whether {@code comm} is {@code name}, or its first 15 bytes. */
    static boolean matches(Pattern name, String comm) {
        Matcher m = name.matcher(comm);
        return m.matches() || comm.length() == COMM_LENGTH && m.hitEnd();
    }

    /** The threads of {@code pid} that the table does not list. */
    static List<String> undocumented(long pid, Path architecture) throws IOException {
        List<Pattern> names = documented(architecture);
        return of(pid).stream().filter(t -> names.stream().noneMatch(n -> matches(n, t))).sorted().toList();
    }
}
