package io.nbdgate.gateway.cli;

import io.nbdgate.gateway.control.ControlClient;
import java.util.concurrent.Callable;
import picocli.CommandLine.Model.CommandSpec;

import static io.nbdgate.gateway.cli.CommandModel.flag;
import static io.nbdgate.gateway.cli.CommandModel.parameter;

/** {@code nbdgate resize DEVICE|NAME [--shrink]}: the device takes its export's current size, live. */
final class ResizeCommand implements Callable<Integer> {

    /** What --help says of the command. */
    static final String[] DESCRIPTION = {
        "Give a device its export's current size, while it is in use: the nbdgate process serving",
        "it asks the server for the size again and changes the device's capacity (ublk UPDATE_SIZE, Linux",
        "6.16+). A file system on it can then grow online (resize2fs /dev/ublkbN, xfs_growfs MOUNTPOINT).",
        "An export that shrank is refused unless --shrink: shrink the file system first, or lose what lies",
        "past the new end. Prints one line. Exit code 1 when refused, when the server cannot be reached,",
        "when no nbdgate process serves that device, or this user may not ask (root only)."
    };

    final CommandSpec spec = CommandModel.command(this, "resize", DESCRIPTION);

    private String which;
    private boolean shrink;

    ResizeCommand() {
        spec.addPositional(parameter("0", String.class, v -> which = v).paramLabel("DEVICE|NAME")
                .description("/dev/ublkbN, or the name given at attach time.").build());
        spec.addOption(flag("--shrink", v -> shrink = v)
                .description("Make the device smaller when the export is: what lies past the new "
                        + "end is gone for whatever uses the device.").build());
    }

    @Override
    public Integer call() {
        try {
            spec.commandLine().getOut().println(ControlClient.resize(which, shrink).get("line"));
            return 0;
        } catch (ControlClient.ControlException e) {
            spec.commandLine().getErr().println("nbdgate: " + e.getMessage());
            return 1;
        }
    }
}
