package io.nbdgate.gateway.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.nbdgate.gateway.control.ControlServer;
import io.nbdgate.gateway.control.DeviceRegistry;
import io.nbdgate.gateway.testsupport.Await;
import io.nbdgate.gateway.testsupport.ExternalNbdServer;
import io.vertx.core.Vertx;
import java.io.File;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The client commands answer one question each: they must not start what they do not use. Each runs in a JVM of
 * its own with bin/client.jvmargs and -Xlog:class+load, and must work (exit code, output) without loading a
 * Vert.x, Netty or logback class or an XML parser (logback's configuration is XML), and without defining a
 * class at run time.
 */
class ClientCommandStartTest {
    private static final List<String> FORBIDDEN = List.of("io.vertx.", "io.netty.", "ch.qos.logback.",
            "javax.xml.", "com.sun.org.apache.xerces.", "jdk.xml.",
            // A class made at run time (an annotation's proxy, as picocli's annotated model needs for each
            // annotation type): no AOT cache holds it, each costs 5-10 ms. CommandModel builds the models in code.
            "__dynamic_proxy__");

    @TempDir
    Path dir;

    record Run(int exit, String out, List<String> loaded) {
    }

    private Run nbdgate(String... args) throws Exception {
        Path root = Path.of(System.getProperty("nbdgate.root"));
        Path gateway = root.resolve("gateway/target");
        String classpath = gateway.resolve("classes") + File.pathSeparator
                + Files.readString(gateway.resolve("test-classpath.txt")).strip();
        Path log = dir.resolve("classes-" + args[0] + ".log");
        List<String> command = new ArrayList<>(List.of(Path.of(System.getProperty("java.home"), "bin", "java").toString(),
                "@" + root.resolve("bin/client.jvmargs"), "-Xlog:class+load:file=" + log,
                "-Dnbdgate.runDir=" + dir.resolve("run"), "-cp", classpath, Main.class.getName()));
        command.addAll(List.of(args));
        Process p = new ProcessBuilder(command).redirectErrorStream(true).start();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertTrue(p.waitFor(60, TimeUnit.SECONDS), "nbdgate " + String.join(" ", args) + " hangs");
        return new Run(p.exitValue(), out, Files.readAllLines(log));
    }

    private static void assertLight(Run r) {
        List<String> heavy = r.loaded().stream()
                .filter(line -> FORBIDDEN.stream().anyMatch(line::contains)).limit(5).toList();
        assertTrue(heavy.isEmpty(), "a client command loaded " + heavy);
    }

    @Test
    void listAsksTheControlSocketsWithoutVertx() throws Exception {
        Vertx vertx = Vertx.vertx();
        ControlServer control = null;
        try {
            // A real serving process's control socket (with no device) in this JVM; list runs in another.
            System.setProperty("nbdgate.runDir", dir.resolve("run").toString());
            control = new ControlServer(vertx, new DeviceRegistry());
            Await.result(control.start());
            Run r = nbdgate("list");
            assertEquals(0, r.exit(), r.out());
            assertTrue(r.out().startsWith("NAME "), r.out());
            assertTrue(r.loaded().stream().anyMatch(l -> l.contains("com.fasterxml.jackson.core.JsonParser ")),
                    "the control socket's answer was not parsed");
            assertLight(r);

            Run detach = nbdgate("detach", "nothing");
            assertEquals(1, detach.exit(), detach.out());
            assertTrue(detach.out().contains("no nbdgate process serves a device named 'nothing'"), detach.out());
            assertLight(detach);

            Run resize = nbdgate("resize", "nothing");
            assertEquals(1, resize.exit(), resize.out());
            assertTrue(resize.out().contains("no nbdgate process serves a device named 'nothing'"), resize.out());
            assertLight(resize);

            Run reload = nbdgate("reload"); // an attach-like process: no file to reload
            assertEquals(1, reload.exit(), reload.out());
            assertTrue(reload.out().contains("no nbdgate daemon with a config file runs here"), reload.out());
            assertLight(reload);

            Run handover = nbdgate("handover"); // the same: an attach process is never handed over
            assertEquals(1, handover.exit(), handover.out());
            assertTrue(handover.out().contains("no nbdgate daemon runs here"), handover.out());
            assertLight(handover);
        } finally {
            if (control != null) {
                control.stop();
            }
            System.clearProperty("nbdgate.runDir");
            vertx.close();
        }
    }

    @Test
    void infoAndListShakeHandsWithoutVertx() throws Exception {
        try (var server = ExternalNbdServer.nbdkit(dir, List.of(), "memory", "size=1M")) {
            Run info = nbdgate("info", "nbd://127.0.0.1:" + server.port() + "/");
            assertEquals(0, info.exit(), info.out());
            assertTrue(info.out().contains("export-size: 1048576 (1.0 MiB)"), info.out());
            assertLight(info);

            Run list = nbdgate("list", "nbd://127.0.0.1:" + server.port());
            assertEquals(0, list.exit(), list.out());
            assertEquals("\"\"\n", list.out());
            assertLight(list);
        }
    }

    @Test
    void helpAndFeaturesStayLight() throws Exception {
        Run help = nbdgate("--help");
        assertEquals(0, help.exit(), help.out());
        assertTrue(help.out().contains("Commands:"), help.out());
        assertLight(help);
        // No ublk on the build hosts: exit 1 with one line; with ublk, the feature list. Light either way.
        Run features = nbdgate("features");
        assertTrue(features.exit() == 0 ? features.out().contains("buffer mode:")
                : features.out().contains("ublk is not usable here"), features.out());
        assertLight(features);
    }
}
