package io.nbdgate.gateway.config;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;

/** Who this process runs as: /proc/self belongs to the process's effective user, no native call needed. */
public final class ProcessUser {
    private ProcessUser() {
    }

    public static int uid() {
        try {
            return (Integer) Files.getAttribute(Path.of("/proc/self"), "unix:uid");
        } catch (IOException e) {
            throw new UncheckedIOException("cannot tell this process's user from /proc/self", e);
        }
    }

    /**
     * Root may create any ublk device; anyone else gets an unprivileged one (UBLK_F_UNPRIVILEGED_DEV), which the
     * kernel limits to copy mode without crash recovery.
     */
    public static boolean root() {
        return uid() == 0;
    }
}
