package io.nbdgate.gateway.cli;

import java.util.LinkedHashMap;
import java.util.Map;
import java.util.function.Supplier;
import picocli.CommandLine;
import picocli.CommandLine.Model.CommandSpec;

/** Entry point of {@code bin/nbdgate}: one picocli command with a subcommand per verb. */
public final class Main implements Runnable {

    final CommandSpec spec = CommandModel.command(this, "nbdgate",
            "Attach remote NBD exports as local block devices (/dev/ublkbN) through ublk.",
            "");

    /** A subcommand: what nbdgate --help says of it, and its whole model. */
    private record Subcommand(String[] description, Supplier<CommandSpec> model) {
    }

    /** The subcommands, in the order --help lists them. */
    private static final Map<String, Subcommand> SUBCOMMANDS = subcommands();

    private static Map<String, Subcommand> subcommands() {
        Map<String, Subcommand> m = new LinkedHashMap<>();
        m.put("attach", new Subcommand(AttachCommand.DESCRIPTION, () -> new AttachCommand().spec));
        m.put("detach", new Subcommand(DetachCommand.DESCRIPTION, () -> new DetachCommand().spec));
        m.put("reload", new Subcommand(ReloadCommand.DESCRIPTION, () -> new ReloadCommand().spec));
        m.put("handover", new Subcommand(HandoverCommand.DESCRIPTION, () -> new HandoverCommand().spec));
        m.put("resize", new Subcommand(ResizeCommand.DESCRIPTION, () -> new ResizeCommand().spec));
        m.put("daemon", new Subcommand(DaemonCommand.DESCRIPTION, () -> new DaemonCommand().spec));
        m.put("demo", new Subcommand(DemoCommand.DESCRIPTION, () -> new DemoCommand().spec));
        m.put("serve", new Subcommand(ServeCommand.DESCRIPTION, () -> new ServeCommand().spec));
        m.put("info", new Subcommand(InfoCommand.DESCRIPTION, () -> new InfoCommand().spec));
        m.put("list", new Subcommand(ListCommand.DESCRIPTION, () -> new ListCommand().spec));
        m.put("features", new Subcommand(FeaturesCommand.DESCRIPTION, () -> new FeaturesCommand().spec));
        m.put("udev-owner", new Subcommand(UdevOwnerCommand.DESCRIPTION, () -> new UdevOwnerCommand().spec));
        m.put("help", new Subcommand(new String[] {HelpCommand.HEADER}, () -> new HelpCommand().spec));
        return m;
    }

    /** SQ entries per event-loop ring unless -Dio.netty.iouring.ringSize says otherwise (Netty's default is 128). */
    static final String RING_SIZE = "1024";

    public static void main(String[] args) {
        if (args.length > 0 && SERVING.contains(args[0])) {
            nettyDefaults();
        }
        CommandLine cli = commandLine(args);
        int code = cli.execute(args);
        cli.getOut().flush();
        cli.getErr().flush();
        var sub = cli.getParseResult() == null ? null : cli.getParseResult().subcommand();
        if (sub == null || !SERVING.contains(sub.commandSpec().name())) {
            // Nothing to clean up, and System.exit would log the exit through System.Logger, starting
            // java.util.logging: about 20 ms, a third of a client command.
            Runtime.getRuntime().halt(code);
        }
        System.exit(code);
    }

    /** Netty's settings for the serving commands, unless the user's -D gave them. */
    private static void nettyDefaults() {
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
    }

    /** The commands that serve until stopped; their shutdown hooks must run. */
    private static final java.util.Set<String> SERVING = java.util.Set.of("attach", "daemon", "demo", "serve");

    /** Runs the CLI and returns its exit code; usage errors exit 2 with one line. */
    public static int run(String... args) {
        return commandLine(args).execute(args);
    }

    /**
     * {@code nbdgate list ...} gets the whole model of {@code list} alone: a command's model loads the classes its
     * fields name (Vert.x for demo and serve), and building all of them is a third of --help. nbdgate --help (and
     * an unknown command) gets every command's summary; {@code help COMMAND} every whole model.
     */
    private static CommandLine commandLine(String... args) {
        // Without it picocli's default factory looks for Groovy's Closure class: a lookup that fails only after
        // reading the whole jar's index (15,000 entries), a tenth of a client command's time.
        if (System.getProperty("picocli.disable.closures") == null) {
            System.setProperty("picocli.disable.closures", "true");
        }
        CommandLine cli = new CommandLine(CommandModel.withStandardHelp(new Main().spec));
        String first = args.length > 0 ? args[0] : "";
        if (!first.equals("-V") && !first.equals("--version")) {
            SUBCOMMANDS.forEach((name, command) -> {
                if (first.equals("help") || first.equals(name)) {
                    cli.addSubcommand(name, CommandModel.withStandardHelp(command.model().get()));
                } else if (!SUBCOMMANDS.containsKey(first)) {
                    cli.addSubcommand(name, CommandModel.summary(name, command.description()));
                }
            });
        }
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
}
