package io.nbdgate.ublk;

import static io.nbdgate.ublk.UblkAbi.F_USER_RECOVERY;
import static io.nbdgate.ublk.UblkAbi.S_DEV_DEAD;

import io.nbdgate.uring.LinuxCalls;
import io.nbdgate.uring.UringException;
import java.util.ArrayList;
import java.util.List;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/** The kernel's ublk devices whose server died and that nobody can take over: found and deleted. */
public final class DeadDevices {
    private static final Logger LOG = LoggerFactory.getLogger(DeadDevices.class);

    private DeadDevices() {
    }

    /**
     * Stops and deletes devices whose server process is gone (e.g. after SIGKILL) and which cannot
     * be recovered; returns their ids. Recoverable ones are left for {@link UblkDevice#recover}.
     */
    public static List<Integer> remove(ControlDevice control) {
        List<Integer> removed = new ArrayList<>();
        for (int devId : DeviceNodes.presentDevices()) {
            try {
                DeviceInfo info = control.deviceInfo(devId);
                boolean alive = info.ublksrvPid() > 0 && LinuxCalls.kill(info.ublksrvPid(), 0);
                if (alive || (info.has(F_USER_RECOVERY) && info.state() != S_DEV_DEAD)) {
                    continue;
                }
                control.stopDevice(devId);
                control.deleteDevice(devId);
                DeviceNodes.awaitNodesGone(devId);
                removed.add(devId);
                LOG.info("removed orphaned ublk device {} (server pid {} gone)", devId, info.ublksrvPid());
            } catch (UringException e) {
                LOG.warn("ublk device {}: cannot remove: {}", devId, e.getMessage());
            }
        }
        return removed;
    }
}
