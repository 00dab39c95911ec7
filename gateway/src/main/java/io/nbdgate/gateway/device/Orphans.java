package io.nbdgate.gateway.device;

import io.nbdgate.ublk.ControlDevice;
import io.nbdgate.uring.UringException;
import java.util.List;
import java.util.Optional;

/**
 * Devices whose process died without detaching them: the state directory still names them, their owner is gone,
 * and the kernel still has them, holding their I/O for a take-over. Listing and removing them needs no daemon.
 */
public final class Orphans {
    private Orphans() {
    }

    /** Every orphan of the state directory. */
    public static List<DeviceRecord> list(DeviceRecords records) {
        return records.all().stream().filter(r -> !r.owner().alive() && records.present(r)).toList();
    }

    /** The orphan named {@code which} (its name or /dev/ublkbN), if there is one. */
    public static Optional<DeviceRecord> find(DeviceRecords records, String which) {
        return list(records).stream().filter(r -> which.equals(r.name()) || which.equals(r.blockDevice())).findFirst();
    }

    /**
     * Removes an orphan as {@link DetachMode} says for a device in use: REFUSE returns the line naming its holders
     * and changes nothing; FORCE fails its held I/O with EIO and deletes it. DEFERRED is refused: no process is
     * left to wait for the last user. Returns null once it is gone.
     */
    public static String remove(DeviceRecords records, DeviceRecord orphan, DetachMode mode) throws UringException {
        List<String> holders = BlockHolders.of(orphan.blockDevice());
        if (!holders.isEmpty() && mode != DetachMode.FORCE) {
            String held = BlockHolders.describe(orphan.blockDevice(), holders);
            return mode == DetachMode.DEFERRED
                    ? held + "; an orphan has no process to wait for its last user: take it over, or use --force"
                    : held;
        }
        try (ControlDevice control = ControlDevice.open()) {
            Takeover.delete(control, orphan.devId());
        }
        records.delete(orphan.name(), orphan.devId());
        return null;
    }
}
