package io.nbdgate.gateway.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

/**
 * IoFlusherExec makes the JVM it execs an IO flusher in every thread, in the same process. PR_SET_IO_FLUSHER (and
 * PR_GET_IO_FLUSHER) need CAP_SYS_RESOURCE, which root in the guest has and a container's root may not: so it
 * runs in the guest.
 */
@Tag("ublk")
class IoFlusherGuestTest {
    private static final String JAVA = Path.of(System.getProperty("java.home"), "bin", "java").toString();
    private static final String CP = System.getProperty("java.class.path");

    @Test
    void theExecedJvmIsTheSameProcessAndEveryThreadOfItIsAnIoFlusher() throws Exception {
        String[] direct = probe(List.of());
        assertEquals("0", direct[1], "without IoFlusherExec the main thread is no flusher");
        assertEquals("0", direct[2]);
        assertTrue(direct[5].contains("C1_CompilerThre") || direct[5].contains("VM_Thread"),
                "without it the JVM's own threads are no flushers: " + direct[5]);

        List<String> exec = List.of(JAVA, "--enable-native-access=ALL-UNNAMED", "-cp", CP,
                IoFlusherExec.class.getName());
        String[] through = probe(exec);
        assertEquals("1", through[1], "the exec'd JVM's main thread");
        assertEquals("1", through[2], "a thread the exec'd JVM started");
        assertEquals(through[3], through[0], "execve keeps the process: the PID the probe prints is the one started");
        assertTrue(Integer.parseInt(through[4]) > 5, "threads: " + through[4]);
        assertEquals("-", through[5], "threads of the exec'd JVM that are not IO flushers (compilers, VM thread...)");
    }

    /**
     * Runs the probe, after {@code prefix} (the exec helper) if any: {pid, main flag, thread flag, started pid,
     * thread count, threads without the flag or "-"}.
     */
    private static String[] probe(List<String> prefix) throws Exception {
        List<String> cmd = new ArrayList<>(prefix);
        cmd.addAll(List.of(JAVA, "--enable-native-access=ALL-UNNAMED", "-cp", CP, IoFlusherProbe.class.getName()));
        Process p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8).trim();
        assertTrue(p.waitFor(60, TimeUnit.SECONDS));
        assertEquals(0, p.exitValue(), out);
        String last = out.lines().reduce((a, b) -> b).orElse("");
        String[] f = last.split(" ");
        assertEquals(5, f.length, out);
        return new String[] {f[0], f[1], f[2], Long.toString(p.pid()), f[3], f[4]};
    }
}
