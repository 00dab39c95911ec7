package io.nbdgate.gateway.cli;

import io.nbdgate.gateway.control.ControlClient;
import java.util.List;
import java.util.concurrent.Callable;
import picocli.CommandLine.Model.CommandSpec;

/** {@code nbdgate reload}: what SIGHUP does to the daemon, with its outcome printed. */
final class ReloadCommand implements Callable<Integer> {

    /** What --help says of the command. */
    static final String[] DESCRIPTION = {
        "Make the nbdgate daemon read its config file again (as SIGHUP does) and print what it did,",
        "one line per device: added devices attach, removed ones detach (one still in use as the file's",
        "reload.in-use says: refuse by default, naming who holds it), changed ones are reported and keep",
        "their settings. A file that does not load changes nothing and says why.",
        "Exit code 1 when no daemon with a config file runs here, or this user may not ask (root only)."
    };

    final CommandSpec spec = CommandModel.command(this, "reload", DESCRIPTION);

    @Override
    public Integer call() {
        try {
            List<String> lines = ControlClient.reload();
            lines.forEach(spec.commandLine().getOut()::println);
            return 0;
        } catch (ControlClient.ControlException e) {
            spec.commandLine().getErr().println("nbdgate: " + e.getMessage());
            return 1;
        }
    }
}
