package io.nbdgate.gateway.cli;

import io.nbdgate.gateway.control.ControlClient;
import io.nbdgate.gateway.device.DetachMode;
import io.nbdgate.gateway.device.DeviceRecord;
import io.nbdgate.gateway.device.DeviceRecords;
import io.nbdgate.gateway.device.Orphans;
import io.nbdgate.uring.UringException;
import java.util.Optional;
import java.util.concurrent.Callable;
import picocli.CommandLine.ArgGroup;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.Spec;

/** {@code nbdgate detach DEVICE|NAME [--force|--deferred]}: asks the nbdgate process serving it to remove it. */
@Command(name = "detach", mixinStandardHelpOptions = true,
        description = {"Detach a device served by nbdgate on this machine: the device is stopped and deleted and",
            "its NBD connections closed. An 'attach' process whose last device is detached exits.",
            "A device in use (a mounted file system, a process holding it open, a device stacked on it) is not",
            "detached: the answer names who holds it and the exit code is 1, as 'dmsetup remove' does. Then",
            "--force removes it now: I/O in flight and after fails with EIO (a file system on it shuts down),",
            "as 'nbd-client -d' does; --deferred removes it once its last user closes it, as 'losetup -d' and",
            "'dmsetup remove --deferred' do ('nbdgate list' shows it pending until then).",
            "Only root (or the user the nbdgate process runs as) may: the control socket",
            "/run/nbdgate/PID.sock is mode 0600 and checks each caller's credentials.",
            "Exit code 1 when the device is in use (without --force/--deferred), when no nbdgate process serves",
            "that device, or this user may not ask.",
            "An orphan (a device whose process died; see 'nbdgate list') is removed here, no process needed:",
            "unused at once, in use only with --force (its held I/O then fails with EIO)."})
final class DetachCommand implements Callable<Integer> {
    @Spec
    CommandSpec spec;

    @Parameters(index = "0", paramLabel = "DEVICE|NAME", description = "/dev/ublkbN, or the name given at attach time.")
    String which;

    @ArgGroup(exclusive = true)
    InUse inUse = new InUse();

    static final class InUse {
        @Option(names = "--force", description = "Remove it now even if in use: its users get EIO.")
        boolean force;

        @Option(names = "--deferred", description = "If in use, remove it once its last user closes it.")
        boolean deferred;
    }

    @Override
    public Integer call() {
        String mode = inUse.force ? "force" : inUse.deferred ? "deferred" : "refuse";
        DeviceRecords records = DeviceRecords.standard();
        Optional<DeviceRecord> orphan = Orphans.find(records, which);
        if (orphan.isPresent()) {
            try {
                String refused = Orphans.remove(records, orphan.get(), DetachMode.of(mode));
                if (refused != null) {
                    spec.commandLine().getErr().println("nbdgate: " + refused);
                    return 1;
                }
            } catch (UringException e) {
                spec.commandLine().getErr().println("nbdgate: removing the orphan " + orphan.get().blockDevice() + ": "
                        + e.getMessage());
                return 1;
            }
            spec.commandLine().getOut().println("detached " + orphan.get().blockDevice() + " (" + orphan.get().name()
                    + ", an orphan of pid " + orphan.get().owner().pid() + ")");
            return 0;
        }
        try {
            ControlClient.Device d = ControlClient.detach(which, mode);
            String pending = d.get("pending");
            spec.commandLine().getOut().println(pending.isEmpty()
                    ? "detached " + d.get("detached") + " (" + d.get("name") + ")"
                    : "in use: " + pending + " (" + d.get("name") + ") will be detached when its last user closes it");
            return 0;
        } catch (ControlClient.ControlException e) {
            spec.commandLine().getErr().println("nbdgate: " + e.getMessage());
            return 1;
        }
    }
}
