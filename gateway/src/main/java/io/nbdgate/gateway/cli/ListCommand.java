package io.nbdgate.gateway.cli;

import io.nbdgate.gateway.control.ControlClient;
import io.nbdgate.gateway.device.DeviceRecord;
import io.nbdgate.gateway.device.DeviceRecords;
import io.nbdgate.gateway.device.Orphans;
import io.nbdgate.gateway.nbd.client.InvalidNbdUriException;
import io.nbdgate.gateway.nbd.client.NbdConnectionException;
import io.nbdgate.gateway.nbd.client.NbdQuery;
import io.nbdgate.gateway.nbd.client.NbdUri;
import io.nbdgate.protocol.client.ExportEntry;
import java.io.PrintWriter;
import java.util.List;
import java.util.concurrent.Callable;
import picocli.CommandLine.Model.CommandSpec;

import static io.nbdgate.gateway.cli.CommandModel.parameter;

/**
 * {@code nbdgate list}: the devices this machine's nbdgate processes serve; {@code nbdgate list URI}: a
 * server's exports (NBD_OPT_LIST).
 */
final class ListCommand implements Callable<Integer> {

    /** What --help says of the command. */
    static final String[] DESCRIPTION = {
        "Without URI: the devices served by nbdgate on this machine (name, device, export, buffer",
        "mode, queues, state), and orphans: devices whose process died, held by the kernel for a take-over;",
        "root only, like detach (exit 1 with the reason otherwise). With URI: the exports of an NBD server, one per line: the name, then a tab",
        "and the server's description if it sends one. The empty name is the default export and prints as \"\".",
        "Exit code 1 when the server cannot be reached or refuses to list, 2 on bad arguments."
    };

    final CommandSpec spec = CommandModel.command(this, "list", DESCRIPTION);

    private NbdUri uri;
    private final NbdClientOptions options = new NbdClientOptions();

    ListCommand() {
        spec.addPositional(parameter("0", NbdUri.class, v -> uri = v).arity("0..1").required(false).paramLabel("URI")
                .converters(new NbdUriConverter())
                .description("The server: nbd://HOST[:PORT], nbd+unix:///?socket=PATH or nbd+vsock://CID[:PORT] (an "
                        + "export name in the URI is ignored).").build());
        options.addTo(spec);
    }

    @Override
    public Integer call() {
        PrintWriter out = spec.commandLine().getOut();
        PrintWriter err = spec.commandLine().getErr();
        if (uri == null) {
            List<ControlClient.Device> devices;
            try {
                devices = ControlClient.devices();
            } catch (ControlClient.ControlException e) {
                err.println("nbdgate: " + e.getMessage());
                return 1;
            }
            out.printf("%-16s %-14s %-24s %-10s %6s  %s%n", "NAME", "DEVICE", "EXPORT", "MODE", "QUEUES", "STATE");
            for (ControlClient.Device d : devices) {
                out.printf("%-16s %-14s %-24s %-10s %6s  %s%n", d.get("name"), d.get("device"),
                        d.get("server") + "/" + d.get("export"), d.get("mode"), d.get("queues"),
                        d.get("state") + (d.get("tls") == null || d.get("tls").isEmpty() ? "" : "; tls: " + d.get("tls")));
            }
            for (DeviceRecord r : Orphans.list(DeviceRecords.standard())) {
                out.printf("%-16s %-14s %-24s %-10s %6s  %s%n", r.name(), r.blockDevice(), r.export(), "-", "-",
                        "orphan: pid " + r.owner().pid() + " died, I/O held until taken over (attach --name "
                                + r.name() + ", or a daemon with it) or detached");
            }
            out.flush();
            return 0;
        }
        NbdUri target;
        try {
            target = uri.withTls(options.tlsSettings());
        } catch (InvalidNbdUriException e) {
            err.println("nbdgate: " + e.getMessage());
            return 2;
        }
        List<ExportEntry> exports;
        try {
            exports = NbdQuery.list(target, options.toOptions()).value();
        } catch (NbdConnectionException e) {
            err.println("nbdgate: " + e.getMessage());
            return 1;
        }
        for (ExportEntry e : exports) {
            String name = e.name().isEmpty() ? "\"\"" : e.name();
            out.println(e.description() == null || e.description().isEmpty() ? name : name + "\t" + e.description());
        }
        out.flush();
        return 0;
    }
}
