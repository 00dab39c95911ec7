package io.nbdgate.gateway.session;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.nbdgate.protocol.ExportInfo;
import io.nbdgate.protocol.TransmissionFlag;
import io.nbdgate.protocol.TransmissionMode;
import java.time.Duration;
import org.junit.jupiter.api.Test;

/** When to try again, and which reconnected exports may carry on: rules without I/O. */
class ReconnectRulesTest {
    private static final int FLAGS = TransmissionFlag.HAS_FLAGS.mask() | TransmissionFlag.SEND_FLUSH.mask()
            | TransmissionFlag.SEND_FUA.mask() | TransmissionFlag.SEND_TRIM.mask();

    private static ExportInfo export(long size, int flags, int min, int preferred, long max) {
        return new ExportInfo("e", "", size, flags, min, preferred, max, true, TransmissionMode.SIMPLE);
    }

    @Test
    void firstAttemptAtOnceThenDoublingJitteredAndCapped() {
        ReconnectPolicy p = ReconnectPolicy.of(Duration.ofMinutes(5));
        assertEquals(Duration.ZERO, p.delay(0));
        for (int i = 0; i < 200; i++) {
            long first = p.delay(1).toMillis();
            long third = p.delay(3).toMillis();
            long late = p.delay(40).toMillis();
            assertTrue(first >= 75 && first <= 125, "attempt 1 after " + first + " ms");
            assertTrue(third >= 300 && third <= 500, "attempt 3 after " + third + " ms");
            assertTrue(late >= 2250 && late <= 3750, "attempt 40 after " + late + " ms: capped at 3 s");
        }
    }

    @Test
    void aReconnectedExportMayGrowButNotShrinkOrChangeWhatTheDeviceUses() {
        ExportInfo was = export(1 << 30, FLAGS, 512, 4096, 32 << 20);
        assertNull(ExportCheck.incompatibility(was, was));
        assertNull(ExportCheck.incompatibility(was, export(2L << 30, FLAGS, 512, 4096, 32 << 20)), "larger is fine");
        assertNull(ExportCheck.incompatibility(was, export(1 << 30, FLAGS | TransmissionFlag.CAN_MULTI_CONN.mask(),
                512, 4096, 32 << 20)), "more commands are fine");
        assertEquals("the export's size shrank from 1073741824 to 1048576 bytes",
                ExportCheck.incompatibility(was, export(1 << 20, FLAGS, 512, 4096, 32 << 20)));
        assertEquals("the export is read-only now", ExportCheck.incompatibility(was,
                export(1 << 30, FLAGS | TransmissionFlag.READ_ONLY.mask(), 512, 4096, 32 << 20)));
        assertEquals("the export's block sizes changed from 512/4096/33554432 to 4096/4096/33554432",
                ExportCheck.incompatibility(was, export(1 << 30, FLAGS, 4096, 4096, 32 << 20)));
        assertEquals("the server no longer supports FUA TRIM", ExportCheck.incompatibility(was,
                export(1 << 30, TransmissionFlag.HAS_FLAGS.mask() | TransmissionFlag.SEND_FLUSH.mask(), 512, 4096,
                        32 << 20)));
    }
}
