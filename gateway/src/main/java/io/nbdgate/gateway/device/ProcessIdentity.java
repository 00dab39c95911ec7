package io.nbdgate.gateway.device;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * A process as the kernel tells it apart: its pid and its start time (clock ticks after boot, field 22 of
 * /proc/PID/stat). A pid alone is not an identity: after a crash the number may already belong to someone else.
 */
public record ProcessIdentity(long pid, long startTicks) {

    public static ProcessIdentity current() {
        long pid = ProcessHandle.current().pid();
        return new ProcessIdentity(pid, startTicks(pid));
    }

    /** Whether this very process still runs (a zombie counts as gone: it serves nothing). */
    public boolean alive() {
        if (pid <= 0) {
            return false;
        }
        String stat = stat(pid);
        return stat != null && startTicks(stat) == startTicks && state(stat) != 'Z' && state(stat) != 'X';
    }

    /** Start time of {@code pid}, or -1 if there is no such process. */
    static long startTicks(long pid) {
        String stat = stat(pid);
        return stat == null ? -1 : startTicks(stat);
    }

    private static String stat(long pid) {
        try {
            return Files.readString(Path.of("/proc", Long.toString(pid), "stat"));
        } catch (IOException e) {
            return null;
        }
    }

    // The command name (field 2) is in parentheses and may hold spaces and ')'; fields count from the last ')'.
    private static String[] fieldsAfterName(String stat) {
        return stat.substring(stat.lastIndexOf(')') + 2).trim().split(" ");
    }

    static long startTicks(String stat) {
        return Long.parseLong(fieldsAfterName(stat)[19]); // field 22
    }

    private static char state(String stat) {
        return fieldsAfterName(stat)[0].charAt(0); // field 3
    }
}
