package io.nbdgate.gateway.cli;

import java.util.List;
import picocli.CommandLine;
import picocli.CommandLine.Command;

/** Entry point of {@code bin/nbdgate}: one picocli command with a subcommand per verb. */
@Command(name = "nbdgate",
        mixinStandardHelpOptions = true,
        versionProvider = Main.Version.class,
        description = {
            "Attach remote NBD exports as local block devices (/dev/ublkbN) through ublk.",
            ""
        })
public final class Main implements Runnable {

    /** The subcommands, in the order --help lists them. */
    private static final List<Class<?>> SUBCOMMANDS = List.of(AttachCommand.class, DetachCommand.class,
            ReloadCommand.class, HandoverCommand.class, ResizeCommand.class,
            DaemonCommand.class, DemoCommand.class, ServeCommand.class, InfoCommand.class, ListCommand.class,
            FeaturesCommand.class, UdevOwnerCommand.class, CommandLine.HelpCommand.class);

    @CommandLine.Spec
    CommandLine.Model.CommandSpec spec;

    /** SQ entries per event-loop ring unless -Dio.netty.iouring.ringSize says otherwise (Netty's default is 128). */
    static final String RING_SIZE = "1024";

    public static void main(String[] args) {
        // Each queue's loop carries its ublk commands (one per tag) plus the NBD connection's send chains;
        // with Netty's 128 entries the ring fills mid-batch and Netty pays an extra io_uring_enter each time.
        if (System.getProperty("io.netty.iouring.ringSize") == null) {
            System.setProperty("io.netty.iouring.ringSize", RING_SIZE);
        }
        // Netty names channels after a MAC address; where no interface has one (a VM with loopback only) it
        // warns on every start and uses random bytes. Random bytes are all it needs: give them up front.
        if (System.getProperty("io.netty.machineId") == null) {
            byte[] id = new byte[8];
            java.util.concurrent.ThreadLocalRandom.current().nextBytes(id);
            id[0] |= 0x02; // locally administered, as a made-up EUI-64 should be
            System.setProperty("io.netty.machineId", java.util.HexFormat.ofDelimiter(":").formatHex(id));
        }
        CommandLine cli = commandLine(args);
        int code = cli.execute(args);
        cli.getOut().flush();
        cli.getErr().flush();
        var sub = cli.getParseResult() == null ? null : cli.getParseResult().subcommand();
        if (sub == null || !SERVING.contains(sub.commandSpec().name())) {
            // Nothing to clean up, and System.exit would log the exit through System.Logger, starting
            // java.util.logging: about 20 ms of a command that otherwise takes 150.
            Runtime.getRuntime().halt(code);
        }
        System.exit(code);
    }

    /** The commands that serve until stopped; their shutdown hooks must run. */
    private static final java.util.Set<String> SERVING = java.util.Set.of("attach", "daemon", "demo", "serve");

    /** Runs the CLI and returns its exit code; usage errors exit 2 with one line. */
    public static int run(String... args) {
        return commandLine(args).execute(args);
    }

    /**
     * {@code nbdgate list ...} gets a model of {@code list} alone: picocli reflects on every command it is
     * given, which cost a client command a third of its time. --version needs none; help, and anything
     * unknown, gets them all.
     */
    private static CommandLine commandLine(String... args) {
        // Without it picocli's default factory looks for Groovy's Closure class: a lookup that fails only after
        // reading the whole jar's index (15,000 entries), a tenth of a client command's time.
        if (System.getProperty("picocli.disable.closures") == null) {
            System.setProperty("picocli.disable.closures", "true");
        }
        CommandLine cli = new CommandLine(new Main());
        String first = args.length > 0 ? args[0] : "";
        List<Class<?>> needed = SUBCOMMANDS.stream()
                .filter(c -> c.getAnnotation(Command.class).name().equals(first) && !first.equals("help")).toList();
        if (first.equals("-V") || first.equals("--version")) {
            needed = List.of();
        } else if (needed.isEmpty()) {
            needed = SUBCOMMANDS;
        }
        needed.forEach(cli::addSubcommand);
        cli.setParameterExceptionHandler((ex, argv) -> {
            ex.getCommandLine().getErr().println("nbdgate: " + ex.getMessage()
                    + " (see '" + ex.getCommandLine().getCommandSpec().qualifiedName() + " --help')");
            return 2;
        });
        return cli;
    }

    @Override
    public void run() {
        spec.commandLine().usage(System.out);
    }

    static final class Version implements CommandLine.IVersionProvider {
        @Override
        public String[] getVersion() {
            String v = Main.class.getPackage().getImplementationVersion();
            return new String[] {"nbdgate " + (v == null ? "dev" : v)};
        }
    }
}
