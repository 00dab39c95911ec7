package io.nbdgate.ublk;

import java.util.List;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;

/**
 * The devices this process has open, and the shutdown hook that stops and deletes them when the JVM exits
 * normally or on SIGTERM, unless the process closes them itself ({@link UblkDevice#ownerClosesAtExit}).
 */
final class OpenDevices {
    private static final Set<UblkDevice> OPEN = ConcurrentHashMap.newKeySet();
    private static volatile boolean ownerCloses;

    static {
        Runtime.getRuntime().addShutdownHook(new Thread(OpenDevices::closeAll, "ublk-teardown"));
    }

    private OpenDevices() {
    }

    static void add(UblkDevice device) {
        OPEN.add(device);
    }

    static void remove(UblkDevice device) {
        OPEN.remove(device);
    }

    static void ownerClosesAtExit() {
        ownerCloses = true;
    }

    private static void closeAll() {
        if (ownerCloses) {
            return;
        }
        for (UblkDevice d : List.copyOf(OPEN)) {
            d.close();
        }
    }
}
