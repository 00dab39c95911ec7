package io.nbdgate.gateway.config;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.vertx.core.Vertx;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

class DaemonConfigTest {
    private static Vertx vertx;

    @TempDir
    Path dir;

    @BeforeAll
    static void start() {
        vertx = Vertx.vertx();
    }

    @AfterAll
    static void stop() {
        vertx.close().await();
    }

    private DaemonConfig load(String yaml) throws Exception {
        Path f = dir.resolve("nbdgate.yaml");
        Files.writeString(f, yaml);
        return load(f);
    }

    private static DaemonConfig load(Path f) throws Exception {
        try {
            return ConfigLoader.load(vertx, f).toCompletionStage().toCompletableFuture().get(10, TimeUnit.SECONDS);
        } catch (ExecutionException e) {
            throw (Exception) e.getCause();
        }
    }

    @Test
    void shippedExampleIsValidAndMeansWhatItsCommentsSay() throws Exception {
        DaemonConfig c = load(Path.of(System.getProperty("nbdgate.root"), "conf", "nbdgate.yaml"));
        assertEquals("127.0.0.1:10810", c.statusListen());
        assertEquals(DaemonConfig.DEFAULT_SHUTDOWN_WAIT, c.shutdownWait());
        assertEquals(1, c.devices().size());
        DeviceConfig d = c.devices().getFirst();
        assertEquals("data", d.name());
        assertEquals("nbd://127.0.0.1:10809/data", d.uri());
        assertEquals(DeviceConfig.AUTO_QUEUES, d.queues());
        assertEquals(128, d.depth());
        assertEquals(ZeroCopy.AUTO, d.zeroCopy());
        assertFalse(d.readOnly());
        assertEquals(-1, d.deviceId());
        assertEquals(Duration.ofSeconds(10), d.connectTimeout());
        assertEquals(Duration.ofSeconds(30), d.ioTimeout());
        assertEquals(64 << 10, d.sendZcMin());
        assertEquals(16 << 10, d.stageReadsMax());
        assertTrue(d.batchIo());
        assertEquals(StructuredReplies.AUTO, d.structuredReplies());
        assertEquals(Duration.ofMinutes(5), d.reconnectTimeout());
        assertEquals(new io.nbdgate.gateway.link.LinkOptions.Keepalive(Duration.ofSeconds(10), Duration.ofSeconds(5), 3,
                Duration.ofSeconds(30)), d.keepalive());
    }

    @Test
    void reconnectAndKeepaliveKeys() throws Exception {
        DaemonConfig c = load("""
                devices:
                  - {name: a, uri: "nbd://h/e", timeouts: {io: 7s}}
                  - {name: b, uri: "nbd://h/e", timeouts: {reconnect: never},
                     keepalive: {idle: 2s, interval: 1s, count: 9, user-timeout: 4s}}
                  - {name: c, uri: "nbd://h/e", timeouts: {reconnect: 90s}}
                """);
        DeviceConfig a = c.devices().get(0);
        assertEquals(DeviceConfig.DEFAULT_RECONNECT_TIMEOUT, a.reconnectTimeout());
        assertEquals(Duration.ofSeconds(7), a.keepalive().userTimeout(), "user-timeout follows the I/O timeout");
        assertNull(c.devices().get(1).reconnectTimeout(), "never");
        assertEquals(new io.nbdgate.gateway.link.LinkOptions.Keepalive(Duration.ofSeconds(2), Duration.ofSeconds(1), 9,
                Duration.ofSeconds(4)), c.devices().get(1).keepalive());
        assertEquals(Duration.ofSeconds(90), c.devices().get(2).reconnectTimeout());
        ConfigException e = org.junit.jupiter.api.Assertions.assertThrows(ConfigException.class, () -> load("""
                devices:
                  - {name: a, uri: "nbd://h/e", keepalive: {idel: 2s}}
                """));
        assertTrue(e.getMessage().contains("devices[0].keepalive.idel"), e.getMessage());
        e = org.junit.jupiter.api.Assertions.assertThrows(ConfigException.class, () -> load("""
                devices:
                  - {name: a, uri: "nbd://h/e", timeouts: {reconnect: sometimes}}
                """));
        assertTrue(e.getMessage().contains("devices[0].timeouts.reconnect"), e.getMessage());
        e = org.junit.jupiter.api.Assertions.assertThrows(ConfigException.class, () -> load("""
                devices:
                  - {name: a, uri: "nbd://h/e", keepalive: {count: 0}}
                """));
        assertTrue(e.getMessage().contains("devices[0].keepalive.count"), e.getMessage());
    }

    @Test
    void minimalDeviceGetsDefaultsAndExplicitValuesWin() throws Exception {
        DaemonConfig c = load("""
                status: {listen: "off"}
                devices:
                  - {name: a, uri: "nbd://h/e"}
                  - name: b
                    uri: nbd+unix:///e?socket=/run/s
                    queues: 4
                    depth: 32
                    zero-copy: "off"
                    read-only: true
                    device-id: 7
                    timeouts: {connect: 500ms, io: 2m}
                    send-zc-min: 1m
                  - {name: c, uri: "nbd://h/e", send-zc-min: 4096, stage-reads-max: 0, batch-io: false,
                     structured-replies: on}
                  - {name: d, uri: "nbd://h/e", structured-replies: off}
                """);
        assertEquals(StructuredReplies.AUTO, c.devices().get(0).structuredReplies());
        assertEquals(StructuredReplies.ON, c.devices().get(2).structuredReplies());
        assertEquals(StructuredReplies.OFF, c.devices().get(3).structuredReplies());
        assertTrue(c.devices().get(0).batchIo());
        assertFalse(c.devices().get(2).batchIo());
        assertNull(c.statusListen());
        assertEquals(DaemonConfig.DEFAULT_SHUTDOWN_WAIT, c.shutdownWait());
        DeviceConfig a = c.devices().get(0);
        assertEquals(DeviceConfig.DEFAULT_DEPTH, a.depth());
        assertEquals(DeviceConfig.DEFAULT_SEND_ZC_MIN, a.sendZcMin());
        assertEquals(4096, c.devices().get(2).sendZcMin());
        assertEquals(0, c.devices().get(2).stageReadsMax());
        assertEquals(DeviceConfig.DEFAULT_STAGE_READS_MAX, a.stageReadsMax());
        DeviceConfig b = c.devices().get(1);
        assertEquals(4, b.queues());
        assertEquals(32, b.depth());
        assertEquals(ZeroCopy.OFF, b.zeroCopy());
        assertTrue(b.readOnly());
        assertEquals(7, b.deviceId());
        assertEquals(Duration.ofMillis(500), b.connectTimeout());
        assertEquals(Duration.ofMinutes(2), b.ioTimeout());
        assertEquals(1 << 20, b.sendZcMin());
    }

    @Test
    void shutdownWaitForUsersTakesADuration() throws Exception {
        DaemonConfig c = load("""
                shutdown: {wait-for-users: 2m}
                devices: [{name: a, uri: "nbd://h/e"}]
                """);
        assertEquals(Duration.ofMinutes(2), c.shutdownWait());
    }

    @Test
    void devicesAreRecoverableUnlessSaidAndOrphansWaitTenMinutesUnlessSaid() throws Exception {
        DaemonConfig c = load("""
                devices: [{name: a, uri: "nbd://h/e"}, {name: b, uri: "nbd://h/f", recovery: false, auto-resize: true}]
                """);
        assertTrue(c.devices().get(0).recovery());
        assertFalse(c.devices().get(1).recovery());
        assertFalse(c.devices().get(0).autoResize(), "auto-resize is off unless said");
        assertTrue(c.devices().get(1).autoResize());
        assertEquals(Duration.ofMinutes(10), c.orphanTimeout());
        assertEquals(Duration.ofSeconds(90), load("""
                orphan-timeout: 90s
                devices: [{name: a, uri: "nbd://h/e"}]
                """).orphanTimeout());
    }

    @ParameterizedTest(name = "{0}")
    @CsvSource(delimiter = '|', value = {
        "recovery not a boolean | devices: [{name: a, uri: 'nbd://h/e', recovery: maybe}]  | devices[0].recovery",
        "auto-resize no boolean | devices: [{name: a, uri: 'nbd://h/e', auto-resize: 1}]  | devices[0].auto-resize",
        "orphan timeout no unit | {orphan-timeout: later, devices: [{name: a, uri: 'nbd://h/e'}]} | orphan-timeout",
        "misspelt key           | devices: [{name: a, uri: 'nbd://h/e', read-olny: true}]   | devices[0].read-olny",
        "unknown top key        | device: []                                                 | device",
        "shutdown wait no unit  | {shutdown: {wait-for-users: soon}, devices: [{name: a, uri: 'nbd://h/e'}]} | shutdown.wait-for-users",
        "shutdown misspelt key  | {shutdown: {wait: 5s}, devices: [{name: a, uri: 'nbd://h/e'}]} | shutdown.wait",
        "no devices             | status: {listen: '127.0.0.1:1'}                            | devices",
        "empty devices          | devices: []                                                | devices",
        "devices not a list     | devices: {name: a}                                         | devices",
        "missing uri            | devices: [{name: a}]                                       | devices[0].uri",
        "missing name           | devices: [{uri: 'nbd://h/e'}]                              | devices[0].name",
        "bad name               | devices: [{name: 'a b', uri: 'nbd://h/e'}]                 | devices[0].name",
        "duplicate name         | devices: [{name: a, uri: 'nbd://h/e'}, {name: a, uri: 'nbd://h/f'}] | devices[1].name",
        "not an nbd uri         | devices: [{name: a, uri: 'http://h/e'}]                    | devices[0].uri",
        "queues zero            | devices: [{name: a, uri: 'nbd://h/e', queues: 0}]          | devices[0].queues",
        "queues text            | devices: [{name: a, uri: 'nbd://h/e', queues: many}]       | devices[0].queues",
        "queues fraction        | devices: [{name: a, uri: 'nbd://h/e', queues: 1.5}]        | devices[0].queues",
        "depth too deep         | devices: [{name: a, uri: 'nbd://h/e', depth: 5000}]        | devices[0].depth",
        "zero-copy bad          | devices: [{name: a, uri: 'nbd://h/e', zero-copy: maybe}]   | devices[0].zero-copy",
        "read-only not bool     | devices: [{name: a, uri: 'nbd://h/e', read-only: 'yes please'}] | devices[0].read-only",
        "timeout unit           | devices: [{name: a, uri: 'nbd://h/e', timeouts: {io: 3 days}}] | devices[0].timeouts.io",
        "timeout zero           | devices: [{name: a, uri: 'nbd://h/e', timeouts: {connect: 0s}}] | devices[0].timeouts.connect",
        "timeout unknown key    | devices: [{name: a, uri: 'nbd://h/e', timeouts: {read: 1s}}] | devices[0].timeouts.read",
        "duplicate device-id    | devices: [{name: a, uri: 'nbd://h/e', device-id: 3}, {name: b, uri: 'nbd://h/f', device-id: 3}] | devices[1].device-id",
        "send-zc-min text       | devices: [{name: a, uri: 'nbd://h/e', send-zc-min: big}]   | devices[0].send-zc-min",
        "send-zc-min too big    | devices: [{name: a, uri: 'nbd://h/e', send-zc-min: 4096m}] | devices[0].send-zc-min",
        "stage-reads-max text   | devices: [{name: a, uri: 'nbd://h/e', stage-reads-max: 1.5k}] | devices[0].stage-reads-max",
        "batch-io not bool      | devices: [{name: a, uri: 'nbd://h/e', batch-io: sometimes}] | devices[0].batch-io",
        "structured-replies bad | devices: [{name: a, uri: 'nbd://h/e', structured-replies: maybe}] | devices[0].structured-replies",
        "send-zc-min negative   | devices: [{name: a, uri: 'nbd://h/e', send-zc-min: -1}]    | devices[0].send-zc-min",
        "status listen bad      | {status: {listen: nowhere}, devices: [{name: a, uri: 'nbd://h/e'}]} | status.listen",
        "tls keys without nbds  | devices: [{name: a, uri: 'nbd://h/e', tls-certificates: /etc/pki/nbd}] | devices[0].uri",
        "tls key contradicts uri | devices: [{name: a, uri: 'nbds://h/e?tls-hostname=x', tls-hostname: y}] | devices[0].uri",
        "tls-verify-peer no bool | devices: [{name: a, uri: 'nbds://h/e', tls-verify-peer: perhaps}] | devices[0].tls-verify-peer",
        "tls-psk-file empty     | devices: [{name: a, uri: 'nbds://h/e', tls-psk-file: ''}]   | devices[0].tls-psk-file",
        "tls misspelt key       | devices: [{name: a, uri: 'nbds://h/e', tls-certificate: /d}] | devices[0].tls-certificate",
    })
    void invalidFileNamesTheKeyAtFault(String what, String yaml, String key) {
        ConfigException e = assertThrows(ConfigException.class, () -> load(yaml));
        assertEquals(key, e.key(), e.getMessage());
        assertTrue(e.getMessage().startsWith(key + ": "), e.getMessage());
        assertFalse(e.getMessage().contains("\n"), "one line: " + e.getMessage());
    }

    @Test
    void tlsKeysSayWhatTheUriParametersSay() throws Exception {
        DaemonConfig c = load("""
                devices:
                  - {name: a, uri: "nbds://disk.example/e", tls-certificates: /etc/nbdgate/tls, tls-hostname: other,
                     tls-verify-peer: false}
                  - {name: b, uri: "nbds://h/e", tls-psk-file: /etc/nbdgate/keys.psk, tls-username: alice}
                  - {name: c, uri: "nbd://h/e"}
                """);
        assertEquals(new io.nbdgate.gateway.tls.TlsSettings(null, "other", false, Path.of("/etc/nbdgate/tls"), null, null),
                c.devices().get(0).tls());
        assertEquals(new io.nbdgate.gateway.tls.TlsSettings(null, null, null, null, Path.of("/etc/nbdgate/keys.psk"),
                "alice"), c.devices().get(1).tls());
        assertTrue(c.devices().get(2).tls().isEmpty());
    }

    @Test
    void yamlSyntaxErrorIsOneLineWithThePosition() {
        ConfigException e = assertThrows(ConfigException.class, () -> load("devices:\n  - name: [unclosed\n"));
        assertTrue(e.getMessage().startsWith("not valid YAML: "), e.getMessage());
        assertTrue(e.getMessage().contains("line"), e.getMessage());
        assertFalse(e.getMessage().contains("\n"), e.getMessage());
    }

    @Test
    void missingAndEmptyFilesAreClear() throws Exception {
        ConfigException missing = assertThrows(ConfigException.class, () -> load(dir.resolve("nope.yaml")));
        assertTrue(missing.getMessage().startsWith("no such file: "), missing.getMessage());
        ConfigException empty = assertThrows(ConfigException.class, () -> load(""));
        assertTrue(empty.getMessage().contains("empty"), empty.getMessage());
    }
}
