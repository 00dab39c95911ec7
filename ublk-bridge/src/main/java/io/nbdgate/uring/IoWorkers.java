package io.nbdgate.uring;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * io_uring's worker threads (io-wq) in this process. A ring operation the kernel cannot issue without
 * blocking is handed to a worker named {@code iou-wrk-TID}, after the thread that submitted it: on a
 * queue's event loop that is a thread switch and another wake-up per operation, which the data path must
 * not pay. A thread's last idle worker stays until the thread ends, so a count above zero means such an
 * operation happened at some point.
 */
public final class IoWorkers {
    private static final Path TASKS = Path.of("/proc/self/task");

    private IoWorkers() {
    }

    /**
     * Workers owned by threads whose name, as the kernel keeps it (15 characters at most), starts with
     * {@code ownerPrefix}.
     */
    public static int ownedBy(String ownerPrefix) throws IOException {
        int n = 0;
        try (var tasks = Files.list(TASKS)) {
            for (Path t : (Iterable<Path>) tasks::iterator) {
                String comm = comm(t);
                if (comm.startsWith("iou-wrk-") && comm(TASKS.resolve(comm.substring(8))).startsWith(ownerPrefix)) {
                    n++;
                }
            }
        }
        return n;
    }

    private static String comm(Path task) {
        try {
            return Files.readString(task.resolve("comm")).strip();
        } catch (IOException gone) {
            return ""; // the thread ended while we looked
        }
    }
}
