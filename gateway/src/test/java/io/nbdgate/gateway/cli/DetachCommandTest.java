package io.nbdgate.gateway.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;

/** `nbdgate detach` and attach's shutdown flag: what is refused before any process is asked anything. */
class DetachCommandTest {
    @Test
    void forceAndDeferredExcludeEachOther() {
        InfoListCommandTest.Run r = InfoListCommandTest.run("detach", "disk", "--force", "--deferred");
        assertEquals(2, r.exit(), r.err());
        assertTrue(r.err().contains("mutually exclusive"), r.err());
    }

    @Test
    void helpSaysWhatHappensToADeviceInUse() {
        InfoListCommandTest.Run r = InfoListCommandTest.run("detach", "--help");
        assertEquals(0, r.exit(), r.err());
        assertTrue(r.out().contains("--force") && r.out().contains("--deferred") && r.out().contains("dmsetup"),
                r.out());
    }

    @Test
    void attachRefusesAShutdownWaitThatIsNoDuration() {
        InfoListCommandTest.Run r = InfoListCommandTest.run("attach", "nbd://127.0.0.1/e", "--shutdown-wait", "soon");
        assertEquals(2, r.exit(), r.err());
        assertEquals("nbdgate attach: --shutdown-wait: must be a duration like 500ms, 10s, 2m or 1h, got 'soon'",
                r.err().strip());
    }
}
