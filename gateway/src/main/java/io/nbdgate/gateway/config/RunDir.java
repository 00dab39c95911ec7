package io.nbdgate.gateway.config;

import java.nio.file.Path;

/** The run directory: control sockets, name links and device state records live under it. */
public final class RunDir {
    private RunDir() {
    }

    /** /run/nbdgate; NBDGATE_RUN_DIR (or -Dnbdgate.runDir) overrides it. */
    public static Path path() {
        String dir = System.getProperty("nbdgate.runDir", System.getenv("NBDGATE_RUN_DIR"));
        return Path.of(dir != null ? dir : "/run/nbdgate");
    }
}
