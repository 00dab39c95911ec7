package io.nbdgate.gateway.cli;

import io.nbdgate.gateway.control.ControlClient;
import java.util.List;
import java.util.concurrent.Callable;
import picocli.CommandLine.Model.CommandSpec;

/** {@code nbdgate handover}: the running daemon exits and leaves its devices, live, to the next one. */
final class HandoverCommand implements Callable<Integer> {

    /** What --help says of the command. */
    static final String[] DESCRIPTION = {
        "Hand the devices of the nbdgate daemon over to the next daemon, for an upgrade without",
        "unmounting: the daemon exits (status 75) without detaching, the kernel holds the devices' I/O, and",
        "the next 'nbdgate daemon' with the same config takes every device over (same /dev/ublkbN; nothing",
        "fails, mounts stay). Under systemd the unit restarts the daemon by itself (RestartForceExitStatus=75),",
        "so an upgrade is: install the new package, then 'nbdgate handover'. Prints one line per device.",
        "Refused, nothing changed, when a device is not recoverable (recovery: false): it would be lost.",
        "SIGTERM and 'systemctl stop' still detach every device. Exit code 1 when no daemon runs here,",
        "it refuses, or this user may not ask (root only)."
    };

    final CommandSpec spec = CommandModel.command(this, "handover", DESCRIPTION);

    @Override
    public Integer call() {
        try {
            List<String> lines = ControlClient.handover();
            lines.forEach(spec.commandLine().getOut()::println);
            return 0;
        } catch (ControlClient.ControlException e) {
            spec.commandLine().getErr().println("nbdgate: " + e.getMessage());
            return 1;
        }
    }
}
