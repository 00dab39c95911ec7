package io.nbdgate.gateway.control;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ch.qos.logback.classic.Logger;
import ch.qos.logback.classic.spi.ILoggingEvent;
import ch.qos.logback.core.read.ListAppender;
import io.nbdgate.uring.LinuxCalls;
import io.vertx.core.Vertx;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.slf4j.LoggerFactory;

/**
 * The control socket is root-only by construction: mode 0600 whatever the umask, a checked directory, and
 * SO_PEERCRED on every connection. The other user is a real one: curl run as nobody through setpriv.
 */
class ControlServerTest {
    @TempDir
    Path dir;

    private Vertx vertx;
    private ControlServer server;
    private Path runDir;

    @BeforeEach
    void setUp() throws Exception {
        // nobody must be able to reach the socket's directory, or the kernel refuses before we are asked.
        Files.setPosixFilePermissions(dir, PosixFilePermissions.fromString("rwxr-xr-x"));
        runDir = dir.resolve("run");
        System.setProperty("nbdgate.runDir", runDir.toString());
        vertx = Vertx.vertx();
    }

    @AfterEach
    void tearDown() {
        if (server != null) {
            server.stop();
        }
        vertx.close().await();
        System.clearProperty("nbdgate.runDir");
    }

    private ControlServer start() {
        server = new ControlServer(vertx, new DeviceRegistry());
        server.start().await();
        return server;
    }

    @Test
    void socketAndDirectoryModesAreSetExplicitlyEvenWithUmaskZero() throws Exception {
        int old = LinuxCalls.umask(0);
        try {
            start();
        } finally {
            LinuxCalls.umask(old);
        }
        assertEquals("rw-------", PosixFilePermissions.toString(Files.getPosixFilePermissions(server.socket())));
        assertEquals("rwxr-xr-x", PosixFilePermissions.toString(Files.getPosixFilePermissions(runDir)));
    }

    @Test
    void rootIsServed() throws Exception {
        start();
        Run r = curl(false, server.socket());
        assertEquals("200", r.status(), r.toString());
        assertEquals("[]", r.body(), r.toString());
    }

    @Test
    void anotherUserCannotConnectToTheSocket() throws Exception {
        start();
        Run r = curl(true, server.socket());
        assertEquals(7, r.exit(), "curl as nobody must fail to connect (exit 7): " + r);
    }

    @Test
    void anotherUserIsRefusedByPeerCredentialsEvenWhenTheSocketIsOpenToAll() throws Exception {
        ListAppender<ILoggingEvent> log = new ListAppender<>();
        log.start();
        Logger logger = (Logger) LoggerFactory.getLogger(ControlServer.class);
        logger.addAppender(log);
        try {
            start();
            // What a umask-only daemon would have had between bind and chmod, or forever.
            Files.setPosixFilePermissions(server.socket(), PosixFilePermissions.fromString("rw-rw-rw-"));
            Run r = curl(true, server.socket());
            assertEquals("403", r.status(), r.toString());
            assertTrue(r.body().contains("user nobody may not use the control socket"), r.toString());
            List<String> lines = new ArrayList<>();
            log.list.forEach(e -> lines.add(e.getFormattedMessage()));
            assertEquals(1, lines.size(), lines.toString());
            assertTrue(lines.getFirst().contains("refused GET /devices: user nobody may not use"), lines.toString());
        } finally {
            logger.detachAppender(log);
        }
    }

    @Test
    void aDirectoryOthersCanWriteIsRefused() throws Exception {
        Files.createDirectories(runDir);
        Files.setPosixFilePermissions(runDir, PosixFilePermissions.fromString("rwxrwxrwx"));
        server = new ControlServer(vertx, new DeviceRegistry());
        Throwable e = server.start().toCompletionStage().toCompletableFuture().handle((v, t) -> t).get();
        assertTrue(e != null && e.getMessage().contains("writable by group or others"), String.valueOf(e));
        assertTrue(Files.list(runDir).findAny().isEmpty(), "no socket in a directory others can write");
    }

    @Test
    void aSymlinkedDirectoryIsRefused() throws Exception {
        Path real = Files.createDirectories(dir.resolve("elsewhere"));
        Files.createSymbolicLink(runDir, real);
        server = new ControlServer(vertx, new DeviceRegistry());
        Throwable e = server.start().toCompletionStage().toCompletableFuture().handle((v, t) -> t).get();
        assertTrue(e != null && e.getMessage().contains("is not a directory"), String.valueOf(e));
    }

    @Test
    void aStaleSocketIsSkippedByTheClient() throws Exception {
        start();
        server.stop();
        // A socket file whose process is gone: list shows nothing rather than failing.
        Files.createDirectories(runDir);
        int fd = LinuxCalls.unixDatagramSocket();
        try {
            LinuxCalls.bindUnix(fd, runDir.resolve("999999999.sock").toString());
        } finally {
            LinuxCalls.close(fd);
        }
        assertTrue(ControlClient.devices().isEmpty());
    }

    @Test
    void aRefusalReachesTheClientInsteadOfAnEmptyList() throws Exception {
        // A server that answers as ours does to a stranger: list must say so, not print an empty table.
        Files.createDirectories(runDir);
        Path socket = runDir.resolve("4242.sock");
        var refusing = vertx.createHttpServer().requestHandler(req -> req.response().setStatusCode(403)
                .end("{\"error\":\"user nobody may not use the control socket (only root)\"}"));
        refusing.listen(io.vertx.core.net.SocketAddress.domainSocketAddress(socket.toString())).await();
        try {
            Throwable e = assertThrows(ControlClient.ControlException.class, ControlClient::devices);
            assertTrue(e.getMessage().equals("control socket " + socket
                    + ": user nobody may not use the control socket (only root)"), String.valueOf(e));
        } finally {
            refusing.close().await();
        }
    }

    record Run(int exit, String status, String body) {
    }

    private static Run curl(boolean asNobody, Path socket) throws Exception {
        List<String> cmd = new ArrayList<>();
        if (asNobody) {
            cmd.addAll(List.of("setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups"));
        }
        cmd.addAll(List.of("curl", "-sS", "--max-time", "20", "-w", "\n%{http_code}",
                "--unix-socket", socket.toString(), "http://localhost/devices"));
        Process p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertTrue(p.waitFor(30, TimeUnit.SECONDS), "curl hangs");
        int nl = out.lastIndexOf('\n');
        return new Run(p.exitValue(), nl < 0 ? out : out.substring(nl + 1).strip(), nl < 0 ? out : out.substring(0, nl));
    }

    @Test
    void attachInDaemonReachesTheDaemonWithTheSettingsAsTheYamlSchemaReadsThemAndSkipsAttachProcesses()
            throws Exception {
        // An attach process's socket first (409: not a daemon), then a daemon's: the client must go on to the daemon.
        // Its own Vert.x: one instance would share the listening server of the same socket path.
        Vertx other = Vertx.vertx();
        ControlServer attachProcess = new ControlServer(other, new DeviceRegistry());
        attachProcess.start().await();
        List<io.nbdgate.gateway.config.DeviceConfig> asked = new ArrayList<>();
        DaemonHooks hooks = new DaemonHooks(List::of, List::of, () -> { }, d -> {
            asked.add(d);
            if (d.name().equals("taken")) {
                throw new IllegalStateException("a device named 'taken' is served already; choose another --name");
            }
            return "/dev/ublkb7";
        });
        // The daemon's socket is named after this pid too: give the attach process's a lower name.
        Files.move(attachProcess.socket(), runDir.resolve("1.sock"));
        server = new ControlServer(vertx, new DeviceRegistry(), hooks);
        server.start().await();
        try {
            ControlClient.Device d = ControlClient.attach("""
                    {"name": "rt", "uri": "nbd://h/e", "queues": 2, "timeouts": {"reconnect": "never"}, "auto-resize": true}
                    """);
            assertEquals("/dev/ublkb7", d.get("device"));
            assertEquals("rt", d.get("name"));
            assertEquals(1, asked.size());
            assertEquals(2, asked.getFirst().queues());
            assertEquals(null, asked.getFirst().reconnectTimeout());
            assertTrue(asked.getFirst().autoResize());

            Throwable refused = assertThrows(ControlClient.ControlException.class,
                    () -> ControlClient.attach("{\"name\": \"taken\", \"uri\": \"nbd://h/e\"}"));
            assertEquals("a device named 'taken' is served already; choose another --name", refused.getMessage());
            Throwable bad = assertThrows(ControlClient.ControlException.class,
                    () -> ControlClient.attach("{\"name\": \"x\", \"uri\": \"nbd://h/e\", \"queues\": -1}"));
            assertTrue(bad.getMessage().startsWith("attach: devices[0].queues"), bad.getMessage());
        } finally {
            attachProcess.stop();
            other.close().await();
        }
        server.stop();
        server = null;
        Throwable none = assertThrows(ControlClient.ControlException.class,
                () -> ControlClient.attach("{\"name\": \"x\", \"uri\": \"nbd://h/e\"}"));
        assertTrue(none.getMessage().startsWith("no nbdgate daemon runs here to attach to"), none.getMessage());
    }
}
