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
        new CommandLine(c).parseArgs(args);
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
    }
}
