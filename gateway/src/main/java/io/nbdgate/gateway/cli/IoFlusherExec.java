package io.nbdgate.gateway.cli;

import io.nbdgate.uring.Errno;
import io.nbdgate.uring.LinuxCalls;
import java.util.ArrayList;
import java.util.List;

/**
 * Starts a serving process (attach, daemon) with every one of its threads an IO flusher. PR_SET_IO_FLUSHER is
 * per thread: what a flusher thread creates inherits it, and execve keeps it. The JVM makes its own threads (JIT
 * compilers, the VM thread that runs safepoints and the collector) before any code of ours runs, and a compiler
 * thread that waits for a page under memory pressure can stop every event loop at the next safepoint, while the
 * page it waits for is to be written out through those loops. So bin/nbdgate starts this small JVM, which sets
 * the flag on its main thread and execs the serving command in its place: the same process (PID, systemd's main
 * process), every thread of the new JVM a flusher. Without the capability (not root) it execs all the same,
 * and the serving process logs what it lacks.
 */
public final class IoFlusherExec {
    private IoFlusherExec() {
    }

    public static void main(String[] args) {
        if (args.length == 0 || !args[0].startsWith("/")) {
            System.err.println("nbdgate: IoFlusherExec needs an absolute command path and its arguments");
            Runtime.getRuntime().halt(2);
        }
        LinuxCalls.prctl(LinuxCalls.PR_SET_IO_FLUSHER, 1);
        List<String> env = new ArrayList<>();
        System.getenv().forEach((k, v) -> env.add(k + "=" + v));
        int r = LinuxCalls.execve(args[0], List.of(args), env);
        System.err.println("nbdgate: cannot start " + args[0] + ": " + Errno.name(-r));
        Runtime.getRuntime().halt(1);
    }
}
