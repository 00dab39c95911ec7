package io.nbdgate.gateway.config;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.nio.file.Path;
import org.junit.jupiter.api.Test;

class RunDirTest {
    /** Root's sockets and records are system-wide; another user's live in that user's runtime directory. */
    @Test
    void rootUsesRunNbdgateAndOtherUsersTheirRuntimeDirectory() {
        assertEquals(Path.of("/run/nbdgate"), RunDir.path(0, "/run/user/0"));
        assertEquals(Path.of("/run/user/1000/nbdgate"), RunDir.path(1000, "/run/user/1000"));
        assertEquals(Path.of("/run/user/1000/nbdgate"), RunDir.path(1000, null), "XDG_RUNTIME_DIR unset");
        assertEquals(Path.of("/run/user/1000/nbdgate"), RunDir.path(1000, ""), "XDG_RUNTIME_DIR empty");
        assertEquals(Path.of("/tmp/xdg/nbdgate"), RunDir.path(1000, "/tmp/xdg"));
    }
}
