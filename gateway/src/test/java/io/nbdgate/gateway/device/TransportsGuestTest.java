package io.nbdgate.gateway.device;

import static io.nbdgate.gateway.device.GuestProcesses.exec;
import static io.nbdgate.gateway.device.GuestProcesses.fioVerify;
import static io.nbdgate.gateway.device.GuestProcesses.run;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import io.nbdgate.gateway.config.DaemonConfig;
import io.nbdgate.gateway.net.VsockAddress;
import io.vertx.core.json.JsonArray;
import io.vertx.core.json.JsonObject;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The transports other than IPv4 TCP and unix sockets, end to end on a real device: AF_VSOCK (nbd+vsock://,
 * libnbd's URI form) against nbdkit --vsock over the guest's vsock_loopback, and an IPv6 literal
 * (nbd://[::1]:PORT/), and a host name looked up again when the server moves. libnbd's nbdinfo and nbdcopy,
 * another client, check what the server holds.
 */
class TransportsGuestTest extends DeviceGuestTestBase {
    @TempDir
    Path dir;

    private final List<Process> servers = new ArrayList<>();

    @AfterEach
    void stopServers() throws Exception {
        for (Process p : servers) {
            p.destroy();
            p.waitFor(10, TimeUnit.SECONDS);
        }
    }

    /** nbdkit with {@code listen} options serving 64 MiB of memory, once libnbd can reach it at {@code uri}. */
    private void nbdkit(String uri, String... listen) throws Exception {
        List<String> args = new ArrayList<>(List.of(listen));
        args.addAll(List.of("memory", "64M"));
        startNbdkit(uri, args);
    }

    private void startNbdkit(String uri, List<String> args) throws Exception {
        // SIGPIPE ignored, as systemd starts services: nbdkit writing to a connection the client reset must not die.
        List<String> cmd = new ArrayList<>(List.of("sh", "-c", "trap '' PIPE; exec \"$@\"", "sh", "nbdkit",
                "--foreground", "--exit-with-parent"));
        cmd.addAll(args);
        Process p = new ProcessBuilder(cmd).redirectErrorStream(true)
                .redirectOutput(dir.resolve("nbdkit-" + servers.size() + ".log").toFile()).start();
        servers.add(p);
        for (int i = 0; i < 600; i++) {
            if (!p.isAlive()) {
                fail("nbdkit " + String.join(" ", args) + " exited " + p.exitValue());
            }
            if (exec("nbdinfo", "--size", uri).exit() == 0) {
                return;
            }
            Thread.sleep(100);
        }
        fail("nbdkit did not answer at " + uri + " within 60 s");
    }

    /** The device for {@code uri}, made as the daemon makes it: the URI through the config schema. */
    private NbdDevice attachUri(String uri) throws Exception {
        JsonObject d = new JsonObject().put("name", "transport").put("uri", uri).put("queues", 2)
                .put("timeouts", new JsonObject().put("connect", "60s"));
        return attach(DeviceOptions.from(DaemonConfig.from(new JsonObject().put("devices", new JsonArray().add(d)))
                .devices().getFirst()));
    }

    private void writeVerifyAndCompareWithLibnbd(String uri) throws Exception {
        fioVerify(device.blockDevice(), "randwrite", "4k", "16M");
        fioVerify(device.blockDevice(), "write", "1M", "48M");
        Path fromDevice = dir.resolve("device.img");
        Path fromServer = dir.resolve("server.img");
        run("dd", "if=" + device.blockDevice(), "of=" + fromDevice, "bs=1M", "iflag=direct", "status=none");
        run("nbdcopy", uri, fromServer.toString());
        assertEquals(run("sha256sum", fromServer.toString()).split(" ")[0],
                run("sha256sum", fromDevice.toString()).split(" ")[0], "the server holds what the device wrote");
    }

    @Test
    void vsockCarriesInfoAndADevice() throws Exception {
        int port = 20000 + ThreadLocalRandom.current().nextInt(20000);
        String uri = "nbd+vsock://" + VsockAddress.CID_LOCAL + ":" + port + "/";
        nbdkit(uri, "--vsock", "--port", Integer.toString(port));

        GuestProcesses.Result info = exec(GuestProcesses.ROOT.resolve("bin/nbdgate").toString(), "info", uri);
        assertEquals(0, info.exit(), info.output());
        assertTrue(info.output().contains("export-size: 67108864"), info.output());

        attachUri(uri);
        assertEquals(2, device.queues(), "nbdkit advertises CAN_MULTI_CONN: one vsock connection per queue");
        writeVerifyAndCompareWithLibnbd(uri);
    }

    @Test
    void ipv6LiteralCarriesADevice() throws Exception {
        int port = 20000 + ThreadLocalRandom.current().nextInt(20000);
        String uri = "nbd://[::1]:" + port + "/";
        nbdkit(uri, "--ipaddr", "::1", "--port", Integer.toString(port));
        attachUri(uri);
        writeVerifyAndCompareWithLibnbd(uri);
    }

    /**
     * A host name is looked up again for the reconnects: the server moves to another address behind the same name
     * (a hosts file the JVM reads, its cache off), the old one dies, and the device carries on with the new one.
     */
    @Test
    void aHostNameIsLookedUpAgainForTheReconnects() throws Exception {
        Path image = dir.resolve("moving.img");
        run("truncate", "-s", "64M", image.toString());
        int port = 20000 + ThreadLocalRandom.current().nextInt(20000);
        nbdkitFile("nbd://127.0.0.1:" + port + "/", image, "--ipaddr", "127.0.0.1", "--port", Integer.toString(port));
        nbdkitFile("nbd://127.0.0.2:" + port + "/", image, "--ipaddr", "127.0.0.2", "--port", Integer.toString(port));
        Path hosts = dir.resolve("hosts");
        java.nio.file.Files.writeString(hosts, "127.0.0.1 nbd-moving\n");
        Path out = dir.resolve("out");
        Path err = dir.resolve("err");
        ProcessBuilder pb = new ProcessBuilder(GuestProcesses.ROOT.resolve("bin/nbdgate").toString(), "attach",
                "nbd://nbd-moving:" + port + "/", "--name", "moving", "--queues", "1", "--no-recovery")
                .redirectOutput(out.toFile()).redirectError(err.toFile());
        pb.environment().put("NBDGATE_RUN_DIR", dir.resolve("run").toString());
        pb.environment().put("NBDGATE_JAVA_OPTS", "-Djdk.net.hosts.file=" + hosts + " -Dsun.net.inetaddr.ttl=0");
        Process attach = pb.start();
        servers.add(attach);
        String dev = GuestProcesses.awaitLines(out, 1, attach, err).getFirst();
        Path data = dir.resolve("data");
        run("dd", "if=/dev/urandom", "of=" + data, "bs=1M", "count=2", "status=none");
        run("dd", "if=" + data, "of=" + dev, "bs=1M", "oflag=direct", "status=none");
        assertEquals(1, io.nbdgate.gateway.testsupport.TcpConnections.clientPorts("127.0.0.1", port).size());

        java.nio.file.Files.writeString(hosts, "127.0.0.2 nbd-moving\n");
        Process first = servers.getFirst();
        first.destroyForcibly(); // the old address's server dies (nbdkit's SIGTERM waits for its clients)
        assertTrue(first.waitFor(10, TimeUnit.SECONDS));
        // Reads through the device are served again once a reconnect found the new address.
        Path back = dir.resolve("back");
        run("dd", "if=" + dev, "of=" + back, "bs=1M", "count=2", "iflag=direct", "status=none");
        run("cmp", data.toString(), back.toString());
        assertEquals(1, io.nbdgate.gateway.testsupport.TcpConnections.clientPorts("127.0.0.2", port).size(),
                "the device's connection goes to the new address");
        assertTrue(java.nio.file.Files.readString(err).contains("nbd-moving now resolves to 127.0.0.2"),
                java.nio.file.Files.readString(err));
        attach.destroy();
        assertTrue(attach.waitFor(60, TimeUnit.SECONDS), "attach must exit on SIGTERM");
    }

    private void nbdkitFile(String uri, Path image, String... listen) throws Exception {
        List<String> args = new ArrayList<>(List.of(listen));
        args.add("file");
        args.add(image.toString());
        startNbdkit(uri, args);
    }
}
