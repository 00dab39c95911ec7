package io.nbdgate.gateway.cli;

import io.nbdgate.ublk.ControlDevice;
import io.nbdgate.ublk.DeviceInfo;
import io.nbdgate.ublk.UblkAbi;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.Callable;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import picocli.CommandLine.Model.CommandSpec;

import static io.nbdgate.gateway.cli.CommandModel.parameter;

/**
 * {@code nbdgate udev-owner ublkcN|ublkbN}: run by udev (conf/99-nbdgate-rootless.rules) as root when a ublk
 * node appears. An unprivileged device's nodes go to the user who created it, as the kernel recorded it
 * (GET_DEV_INFO2 owner_uid/gid); every other device's nodes are left as they are.
 */
final class UdevOwnerCommand implements Callable<Integer> {

    /** What --help says of the command. */
    static final String[] DESCRIPTION = {
        "Hand the /dev nodes of an unprivileged ublk device to the user who created it.",
        "Run by the udev rule conf/99-nbdgate-rootless.rules (as root), not by hand.",
        "Exit code 0 also when the device is not unprivileged (nothing to do); 1 on failure."
    };

    final CommandSpec spec = CommandModel.command(this, "udev-owner", DESCRIPTION);

    private static final Pattern NODE = Pattern.compile("ublk[bc]([0-9]+)");
    private String node;

    UdevOwnerCommand() {
        spec.addPositional(parameter("0", String.class, v -> node = v).paramLabel("NODE")
                .description("The kernel name of the node (udev's %k): ublkcN or ublkbN.").build());
    }

    @Override
    public Integer call() {
        Matcher m = NODE.matcher(node);
        if (!m.matches()) {
            System.err.println("nbdgate udev-owner: '" + node + "' is not a ublk node name (ublkcN or ublkbN)");
            return 2;
        }
        int devId = Integer.parseInt(m.group(1));
        Path path = Path.of("/dev", node);
        try (ControlDevice control = ControlDevice.open()) {
            DeviceInfo info = control.deviceInfo(devId);
            if (!info.has(UblkAbi.F_UNPRIVILEGED_DEV)) {
                return 0;
            }
            Files.setAttribute(path, "unix:gid", info.ownerGid());
            Files.setAttribute(path, "unix:uid", info.ownerUid());
            return 0;
        } catch (Exception e) {
            System.err.println("nbdgate udev-owner: " + path + ": " + e.getMessage());
            return 1;
        }
    }
}
