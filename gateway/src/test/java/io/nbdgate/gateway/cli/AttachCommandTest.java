package io.nbdgate.gateway.cli;

import static org.junit.jupiter.api.Assertions.*;

import io.nbdgate.gateway.config.DeviceConfig;
import io.nbdgate.gateway.config.StructuredReplies;
import org.junit.jupiter.api.Test;
import picocli.CommandLine;

/** What `nbdgate attach` options turn into, before anything is attached. */
class AttachCommandTest {
    private static DeviceConfig parse(String... args) throws Exception {
        AttachCommand c = new AttachCommand();
        new CommandLine(c.spec).parseArgs(args);
        return c.toConfig();
    }

    @Test
    void batchIoIsOnByDefaultAndNoBatchIoTurnsItOff() throws Exception {
        assertTrue(parse("nbd://h/e").batchIo());
        assertTrue(parse("nbd://h/e", "--batch-io").batchIo());
        assertFalse(parse("nbd://h/e", "--no-batch-io").batchIo());
    }

    @Test
    void structuredRepliesTakeAutoOnOrOff() throws Exception {
        assertEquals(StructuredReplies.AUTO, parse("nbd://h/e").structuredReplies());
        assertEquals(StructuredReplies.ON, parse("nbd://h/e", "--structured-replies", "on").structuredReplies());
        assertEquals(StructuredReplies.OFF, parse("nbd://h/e", "--structured-replies=off").structuredReplies());
    }

    @Test
    void defaultsMatchTheConfigFileDefaults() throws Exception {
        DeviceConfig d = parse("nbd://h/e");
        assertEquals(DeviceConfig.DEFAULT_DEPTH, d.depth());
        assertEquals(DeviceConfig.DEFAULT_SEND_ZC_MIN, d.sendZcMin());
        assertEquals(DeviceConfig.DEFAULT_STAGE_READS_MAX, d.stageReadsMax());
        assertEquals(DeviceConfig.AUTO_QUEUES, d.queues());
        assertEquals(DeviceConfig.DEFAULT_RECONNECT_TIMEOUT, d.reconnectTimeout());
        assertEquals(DeviceConfig.defaultKeepalive(DeviceConfig.DEFAULT_IO_TIMEOUT), d.keepalive());
    }

    @Test
    void reconnectAndKeepaliveFlags() throws Exception {
        assertNull(parse("nbd://h/e", "--reconnect-timeout", "never").reconnectTimeout());
        assertEquals(java.time.Duration.ofSeconds(45), parse("nbd://h/e", "--reconnect-timeout=45s").reconnectTimeout());
        DeviceConfig d = parse("nbd://h/e", "--keepalive-idle=3s", "--keepalive-interval=2s", "--keepalive-count=4",
                "--tcp-user-timeout=9s");
        assertEquals(new io.nbdgate.gateway.link.LinkOptions.Keepalive(java.time.Duration.ofSeconds(3),
                java.time.Duration.ofSeconds(2), 4, java.time.Duration.ofSeconds(9)), d.keepalive());
        assertEquals(java.time.Duration.ofSeconds(7), parse("nbd://h/e", "--io-timeout=7s").keepalive().userTimeout());
        Exception e = assertThrows(Exception.class, () -> parse("nbd://h/e", "--reconnect-timeout=soon"));
        assertTrue(e.getMessage().contains("reconnect") && e.getMessage().contains("or never"), e.getMessage());
    }
}
