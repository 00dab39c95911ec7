package io.nbdgate.gateway.cli;

import io.nbdgate.uring.LinuxCalls;

/** Prints its PID and PR_GET_IO_FLUSHER of its main thread and of a thread it starts (IoFlusherExecTest). */
public final class IoFlusherProbe {
    private IoFlusherProbe() {
    }

    public static void main(String[] args) throws Exception {
        int[] other = new int[1];
        Thread t = new Thread(() -> other[0] = LinuxCalls.prctl(LinuxCalls.PR_GET_IO_FLUSHER, 0));
        t.start();
        t.join();
        System.out.println(ProcessHandle.current().pid() + " " + LinuxCalls.prctl(LinuxCalls.PR_GET_IO_FLUSHER, 0)
                + " " + other[0]);
    }
}
