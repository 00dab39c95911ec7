package io.nbdgate.gateway.cli;

import java.util.concurrent.Callable;
import picocli.CommandLine;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Model.OptionSpec;

import static io.nbdgate.gateway.cli.CommandModel.parameter;

/** {@code nbdgate help [COMMAND]}: the usage of nbdgate, or of one of its commands. */
final class HelpCommand implements Callable<Integer> {

    /** What nbdgate --help says of it. */
    static final String HEADER = "Display help information about the specified command.";

    final CommandSpec spec = CommandModel.command(this, "help",
            "%nWhen no COMMAND is given, the usage help for the main command is displayed.",
            "If a COMMAND is specified, the help for that command is shown.%n");

    private String command;

    HelpCommand() {
        spec.helpCommand(true);
        spec.usageMessage().header(HEADER).synopsisHeading("%nUsage: ");
        spec.addOption(OptionSpec.builder("-h", "--help").usageHelp(true)
                .description("Show usage help for the help command and exit.").build());
        spec.addPositional(parameter("0", String.class, v -> command = v).arity("0..1").required(false)
                .paramLabel("COMMAND")
                .description("The COMMAND to display the usage help message for.").build());
    }

    @Override
    public Integer call() {
        CommandLine parent = spec.parent().commandLine();
        CommandLine target = command == null ? parent : parent.getSubcommands().get(command);
        if (target == null) {
            throw new CommandLine.ParameterException(parent, "Unknown subcommand '" + command + "'.");
        }
        target.usage(parent.getOut());
        return 0;
    }
}
