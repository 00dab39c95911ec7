package io.nbdgate.gateway.config;

import java.nio.file.Path;

/** The run directory: control sockets, name links and device state records live under it. */
public final class RunDir {
    private RunDir() {
    }

    /**
     * /run/nbdgate for root; for another user $XDG_RUNTIME_DIR/nbdgate (/run/user/UID/nbdgate when unset), so
     * rootless devices keep their sockets and records in the user's own runtime directory. NBDGATE_RUN_DIR (or
     * -Dnbdgate.runDir) overrides both.
     */
    public static Path path() {
        String dir = System.getProperty("nbdgate.runDir", System.getenv("NBDGATE_RUN_DIR"));
        return dir != null ? Path.of(dir) : path(ProcessUser.uid(), System.getenv("XDG_RUNTIME_DIR"));
    }

    static Path path(int uid, String xdgRuntimeDir) {
        if (uid == 0) {
            return Path.of("/run/nbdgate");
        }
        return Path.of(xdgRuntimeDir != null && !xdgRuntimeDir.isEmpty() ? xdgRuntimeDir : "/run/user/" + uid, "nbdgate");
    }
}
