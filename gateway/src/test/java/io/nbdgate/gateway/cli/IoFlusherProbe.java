package io.nbdgate.gateway.cli;

import io.nbdgate.uring.LinuxCalls;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * Prints its PID, PR_GET_IO_FLUSHER of its main thread and of a thread it starts, and the names of its threads
 * that are not IO flushers (PF_MEMALLOC_NOIO | PF_LOCAL_THROTTLE in /proc/self/task/TID/stat), for
 * IoFlusherGuestTest: the JVM's own threads (compilers, VM thread, GC) included.
 */
public final class IoFlusherProbe {
    private static final long IO_FLUSHER = 0x00080000L | 0x00100000L;

    private IoFlusherProbe() {
    }

    public static void main(String[] args) throws Exception {
        int[] other = new int[1];
        Thread t = new Thread(() -> other[0] = LinuxCalls.prctl(LinuxCalls.PR_GET_IO_FLUSHER, 0));
        t.start();
        t.join();
        List<String> not = new ArrayList<>();
        int threads = 0;
        try (var tasks = Files.list(Path.of("/proc/self/task"))) {
            for (Path task : tasks.toList()) {
                String stat = Files.readString(task.resolve("stat"));
                long flags = Long.parseLong(stat.substring(stat.lastIndexOf(')') + 2).split(" ")[6]);
                threads++;
                if ((flags & IO_FLUSHER) != IO_FLUSHER) {
                    not.add(Files.readString(task.resolve("comm")).strip().replace(' ', '_'));
                }
            }
        }
        System.out.println(ProcessHandle.current().pid() + " " + LinuxCalls.prctl(LinuxCalls.PR_GET_IO_FLUSHER, 0)
                + " " + other[0] + " " + threads + " " + (not.isEmpty() ? "-" : String.join(",", not)));
    }
}
