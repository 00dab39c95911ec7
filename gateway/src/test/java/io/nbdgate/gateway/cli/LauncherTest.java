package io.nbdgate.gateway.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * bin/nbdgate picks its JDK from the JDK's release file, without starting a JVM to ask for the version
 * (a start costs seconds on a slow machine, before the real one even begins).
 */
class LauncherTest {
    @TempDir
    Path dir;

    record Run(int exit, String output) {
    }

    /** A JDK directory whose bin/java records each call and prints its arguments and glibc's mmap threshold. */
    private Path fakeJdk(String name, String javaVersion) throws Exception {
        Path home = dir.resolve(name);
        Files.createDirectories(home.resolve("bin"));
        Files.writeString(home.resolve("release"), "IMPLEMENTOR=\"test\"\nJAVA_VERSION=\"" + javaVersion + "\"\n"
                + "JAVA_RUNTIME_VERSION=\"" + javaVersion + "+9-LTS\"\n");
        Path java = home.resolve("bin/java");
        Files.writeString(java, "#!/bin/sh\necho \"$*\" >> " + home.resolve("calls") + "\necho \"ran $*\"\n"
                + "echo \"mmap threshold: ${MALLOC_MMAP_THRESHOLD_:-glibc's}\"\n");
        Files.setPosixFilePermissions(java, PosixFilePermissions.fromString("rwxr-xr-x"));
        return home;
    }

    private Run launch(Path javaHome) throws Exception {
        Path jar = Files.writeString(dir.resolve("nbdgate.jar"), "not a jar");
        Path launcher = Path.of(System.getProperty("nbdgate.root"), "bin", "nbdgate");
        ProcessBuilder pb = new ProcessBuilder("bash", launcher.toString(), "--version").redirectErrorStream(true);
        pb.environment().put("JAVA_HOME", javaHome.toString());
        pb.environment().put("NBDGATE_JAR", jar.toString());
        Process p = pb.start();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertTrue(p.waitFor(60, TimeUnit.SECONDS), "launcher hangs");
        return new Run(p.exitValue(), out);
    }

    @Test
    void aNewEnoughJdkIsChosenFromItsReleaseFileWithoutAProbeRun() throws Exception {
        Path jdk = fakeJdk("jdk25", "25.0.1");
        Run r = launch(jdk);
        assertEquals(0, r.exit(), r.output());
        assertTrue(r.output().contains("ran @" + Path.of(System.getProperty("nbdgate.root"), "bin", "client.jvmargs")
                + " -cp " + dir.resolve("nbdgate.jar") + " io.nbdgate.gateway.cli.Main --version"), r.output());
        // The only call is the real run: no "java -XshowSettings:properties -version" before it.
        assertEquals(1, Files.readAllLines(jdk.resolve("calls")).size(), Files.readString(jdk.resolve("calls")));
    }

    /** A copy of the launcher in a build tree of its own, with a jar and (maybe) an AOT cache beside it. */
    private Run launchFromTree(Path javaHome, boolean cacheNewerThanJar, String... args) throws Exception {
        return launchFromTree(javaHome, cacheNewerThanJar, java.util.Map.of(), args);
    }

    private Run launchFromTree(Path javaHome, boolean cacheNewerThanJar, java.util.Map<String, String> env,
                               String... args) throws Exception {
        Path root = Path.of(System.getProperty("nbdgate.root"));
        Path tree = dir.resolve("tree");
        Files.createDirectories(tree.resolve("bin"));
        Files.createDirectories(tree.resolve("gateway/target"));
        Files.copy(root.resolve("bin/nbdgate"), tree.resolve("bin/nbdgate"), StandardCopyOption.REPLACE_EXISTING);
        for (String options : List.of("client.jvmargs", "daemon.jvmargs")) {
            Files.copy(root.resolve("bin").resolve(options), tree.resolve("bin").resolve(options), StandardCopyOption.REPLACE_EXISTING);
        }
        Path jar = Files.writeString(tree.resolve("gateway/target/nbdgate.jar"), "not a jar");
        long now = System.currentTimeMillis();
        Files.setLastModifiedTime(jar, java.nio.file.attribute.FileTime.fromMillis(now - (cacheNewerThanJar ? 60_000 : 0)));
        for (String name : List.of("nbdgate", "nbdgate-serving")) {
            Path cache = Files.writeString(tree.resolve("gateway/target/" + name + "-25.0.1+9-LTS.aot"), "not a cache");
            Files.setLastModifiedTime(cache, java.nio.file.attribute.FileTime.fromMillis(now - (cacheNewerThanJar ? 0 : 60_000)));
        }
        List<String> command = new java.util.ArrayList<>(List.of("bash", tree.resolve("bin/nbdgate").toString()));
        command.addAll(List.of(args));
        ProcessBuilder pb = new ProcessBuilder(command).redirectErrorStream(true);
        pb.environment().put("JAVA_HOME", javaHome.toString());
        pb.environment().remove("NBDGATE_JAR");
        pb.environment().remove("NBDGATE_IO_FLUSHER");
        pb.environment().putAll(env);
        Process p = pb.start();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertTrue(p.waitFor(60, TimeUnit.SECONDS), "launcher hangs");
        return new Run(p.exitValue(), out);
    }

    @Test
    void clientCommandsGetTheirOptionsAndAnAotCacheOnlyIfItIsNewerThanTheJar() throws Exception {
        Path jdk = fakeJdk("jdk25", "25.0.1");
        Run fresh = launchFromTree(jdk, true, "list");
        assertTrue(fresh.output().contains("client.jvmargs -XX:AOTCache=" + dir.resolve("tree/gateway/target/nbdgate-25.0.1+9-LTS.aot")
                + " -cp "), fresh.output());
        // JDK 25 would run the classes of the build the cache was made from: a jar built since must go without.
        Run stale = launchFromTree(jdk, false, "list");
        assertTrue(stale.output().contains("client.jvmargs -cp "), stale.output());
        assertFalse(stale.output().contains("AOTCache"), stale.output());
        assertTrue(fresh.output().contains("mmap threshold: glibc's"), fresh.output());
    }

    @Test
    void servingCommandsGetTheirOptionsAndTheServingAotCacheOnlyIfItIsNewerThanTheJar() throws Exception {
        Path jdk = fakeJdk("jdk25", "25.0.1");
        // The commands that own devices get a fixed, pre-touched heap; the embedded server the JVM's defaults.
        // As root (the host layer runs as root) through IoFlusherExec, which execs the serving JVM in its place;
        // both JVMs start from the serving commands' cache.
        Path javaBin = jdk.resolve("bin/java");
        Path jar = dir.resolve("tree/gateway/target/nbdgate.jar");
        String cache = "-XX:AOTCache=" + dir.resolve("tree/gateway/target/nbdgate-serving-25.0.1+9-LTS.aot");
        Run attach = launchFromTree(jdk, true, "attach", "nbd://h/e");
        assertTrue(attach.output().contains("ran @" + dir.resolve("tree/bin/client.jvmargs") + " " + cache + " -cp "
                + jar + " io.nbdgate.gateway.cli.IoFlusherExec " + javaBin + " @" + dir.resolve("tree/bin/daemon.jvmargs")
                + " " + cache + " -cp " + jar + " io.nbdgate.gateway.cli.Main attach nbd://h/e"), attach.output());
        Run direct = launchFromTree(jdk, true, java.util.Map.of("NBDGATE_IO_FLUSHER", "0"), "daemon");
        assertTrue(direct.output().contains("ran @" + dir.resolve("tree/bin/daemon.jvmargs") + " " + cache + " -cp "
                + jar + " io.nbdgate.gateway.cli.Main daemon"), direct.output());
        // Under mlockall, what malloc frees must be unmapped to leave: blocks from 16 KiB up get mappings of their own.
        assertTrue(attach.output().contains("mmap threshold: 16384"), attach.output());
        assertTrue(direct.output().contains("mmap threshold: 16384"), direct.output());
        Run serve = launchFromTree(jdk, true, "serve", "--export", "e=memory:1M");
        assertTrue(serve.output().contains("ran --enable-native-access=ALL-UNNAMED -Xlog:aot=off -Xlog:cds=off "
                + cache + " -cp "), serve.output());
        Run stale = launchFromTree(jdk, false, "attach", "nbd://h/e");
        assertTrue(stale.output().contains("ran @" + dir.resolve("tree/bin/client.jvmargs") + " -cp " + jar
                + " io.nbdgate.gateway.cli.IoFlusherExec " + javaBin + " @" + dir.resolve("tree/bin/daemon.jvmargs")
                + " -cp " + jar + " io.nbdgate.gateway.cli.Main attach nbd://h/e"), stale.output());
    }

    @Test
    void anOldJdkIsPassedOverWithoutBeingRun() throws Exception {
        Path jdk = fakeJdk("jdk17", "17.0.2");
        launch(jdk); // falls through to another JDK on this machine, which then refuses the fake jar
        assertFalse(Files.exists(jdk.resolve("calls")), "the JDK 17 was started");
    }
}
