package io.nbdgate.gateway.cli;

import io.nbdgate.gateway.control.ControlClient;
import io.nbdgate.gateway.device.DetachMode;
import io.nbdgate.gateway.device.DeviceRecord;
import io.nbdgate.gateway.device.DeviceRecords;
import io.nbdgate.gateway.device.Orphans;
import io.nbdgate.uring.UringException;
import java.util.Optional;
import java.util.concurrent.Callable;
import picocli.CommandLine.Model.ArgGroupSpec;
import picocli.CommandLine.Model.CommandSpec;

import static io.nbdgate.gateway.cli.CommandModel.flag;
import static io.nbdgate.gateway.cli.CommandModel.parameter;

/** {@code nbdgate detach DEVICE|NAME [--force|--deferred]}: asks the nbdgate process serving it to remove it. */
final class DetachCommand implements Callable<Integer> {

    /** What --help says of the command. */
    static final String[] DESCRIPTION = {
        "Detach a device served by nbdgate on this machine: the device is stopped and deleted and",
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
        "unused at once, in use only with --force (its held I/O then fails with EIO)."
    };

    final CommandSpec spec = CommandModel.command(this, "detach", DESCRIPTION);

    private String which;
    private boolean force;
    private boolean deferred;

    DetachCommand() {
        spec.addPositional(parameter("0", String.class, v -> which = v).paramLabel("DEVICE|NAME")
                .description("/dev/ublkbN, or the name given at attach time.").build());
        spec.addArgGroup(ArgGroupSpec.builder().exclusive(true)
                .addArg(flag("--force", v -> force = v)
                        .description("Remove it now even if in use: its users get EIO.").build())
                .addArg(flag("--deferred", v -> deferred = v)
                        .description("If in use, remove it once its last user closes it.").build())
                .build());
    }

    @Override
    public Integer call() {
        String mode = force ? "force" : deferred ? "deferred" : "refuse";
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
