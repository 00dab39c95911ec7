package io.nbdgate.gateway.cli;

import java.io.OutputStream;
import java.io.PrintStream;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Comparator;
import java.util.stream.Stream;

/**
 * The workload from which the AOT cache of the serving commands (attach, daemon) is recorded, with
 * bin/daemon.jvmargs (gateway/pom.xml at package time, scripts/package for the packaged runtime). A serving
 * JVM's start is the time I/O waits when the next daemon takes devices over after a crash or a hand-over, so
 * it is worth a cache of its own; the client commands' cache ({@link AotTraining}) must stay free of Vert.x.
 * It runs {@code daemon --check}, then {@code daemon} and {@code attach} against a port nobody listens on:
 * configuration, logging, Vert.x and Netty's io_uring transport, the memory guard, and the attach up to the
 * server. Nothing is attached, on a host with ublk or without; the build hosts have none.
 */
final class ServingAotTraining {
    private ServingAotTraining() {
    }

    public static void main(String[] args) throws Exception {
        Path dir = Files.createTempDirectory("nbdgate-aot-training");
        System.setProperty("nbdgate.runDir", dir.resolve("run").toString());
        PrintStream out = System.out;
        PrintStream err = System.err;
        PrintStream quiet = new PrintStream(OutputStream.nullOutputStream(), true, StandardCharsets.UTF_8);
        try {
            int closedPort;
            try (ServerSocket s = new ServerSocket(0, 1, InetAddress.getLoopbackAddress())) {
                closedPort = s.getLocalPort();
            }
            String uri = "nbd://127.0.0.1:" + closedPort + "/";
            Path config = Files.writeString(dir.resolve("nbdgate.yaml"), """
                    status: {listen: "off"}
                    devices:
                      - {name: aot-training, uri: "%s", queues: 1, timeouts: {connect: 1s}}
                    """.formatted(uri));
            System.setOut(quiet);
            System.setErr(quiet);
            Main.run("daemon", "--config", config.toString(), "--check");
            Main.run("daemon", "--config", config.toString());
            Main.run("attach", uri, "--name", "aot-training", "--connect-timeout", "1s");
        } finally {
            System.setOut(out);
            System.setErr(err); // a failure of the training must be seen in the build's output
            try (Stream<Path> files = Files.walk(dir)) {
                files.sorted(Comparator.reverseOrder()).forEach(p -> p.toFile().delete());
            }
        }
        out.println("AOT training: ran the serving commands up to the server");
    }
}
