package io.nbdgate.gateway.cli;

import io.nbdgate.gateway.control.ControlClient;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.Spec;
import picocli.CommandLine.Model.CommandSpec;

/** {@code nbdgate detach DEVICE|NAME}: asks the nbdgate process serving it to stop and delete the device. */
@Command(name = "detach", mixinStandardHelpOptions = true,
        description = {"Detach a device served by nbdgate on this machine: requests in flight finish, the device is",
            "stopped and deleted, and the NBD connections are closed. An 'attach' process whose last device is",
            "detached exits. Only root (or the user the nbdgate process runs as) may: the control socket",
            "/run/nbdgate/PID.sock is mode 0600 and checks each caller's credentials.",
            "Exit code 1 when no nbdgate process serves that device, or this user may not ask."})
final class DetachCommand implements Callable<Integer> {
    @Spec
    CommandSpec spec;

    @Parameters(index = "0", paramLabel = "DEVICE|NAME", description = "/dev/ublkbN, or the name given at attach time.")
    String which;

    @Override
    public Integer call() {
        try {
            ControlClient.Device d = ControlClient.detach(which);
            spec.commandLine().getOut().println("detached " + d.get("detached") + " (" + d.get("name") + ")");
            return 0;
        } catch (ControlClient.ControlException e) {
            spec.commandLine().getErr().println("nbdgate: " + e.getMessage());
            return 1;
        }
    }
}
