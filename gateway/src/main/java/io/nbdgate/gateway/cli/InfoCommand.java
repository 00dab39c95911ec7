package io.nbdgate.gateway.cli;

import io.nbdgate.gateway.nbd.client.InvalidNbdUriException;
import io.nbdgate.gateway.nbd.client.NbdConnectionException;
import io.nbdgate.gateway.nbd.client.NbdQuery;
import io.nbdgate.gateway.nbd.client.NbdUri;
import io.nbdgate.gateway.tls.TlsDescription;
import io.nbdgate.protocol.ExportInfo;
import java.io.PrintWriter;
import java.util.concurrent.Callable;
import picocli.CommandLine.Model.CommandSpec;

import static io.nbdgate.gateway.cli.CommandModel.parameter;

/** {@code nbdgate info URI}: what the server says about one export, in the manner of nbdinfo. */
final class InfoCommand implements Callable<Integer> {

    /** What --help says of the command. */
    static final String[] DESCRIPTION = {
        "Connect to an NBD export, print its size, transmission flags and block sizes, and disconnect.",
        "Exit code 1 when the server cannot be reached or refuses the export, 2 on bad arguments."
    };

    final CommandSpec spec = CommandModel.command(this, "info", DESCRIPTION);

    private NbdUri uri;
    private final NbdClientOptions options = new NbdClientOptions();

    InfoCommand() {
        spec.addPositional(parameter("0", NbdUri.class, v -> uri = v).paramLabel("URI")
                .converters(new NbdUriConverter())
                .description("The export: nbd://HOST[:PORT]/EXPORT, nbd+unix:///EXPORT?socket=PATH or "
                        + "nbd+vsock://CID[:PORT]/EXPORT (NBD URI format; the port defaults to 10809, an "
                        + "empty EXPORT is the default export).").build());
        options.addTo(spec);
    }

    @Override
    public Integer call() {
        PrintWriter out = spec.commandLine().getOut();
        PrintWriter err = spec.commandLine().getErr();
        NbdUri target;
        try {
            target = uri.withTls(options.tlsSettings());
        } catch (InvalidNbdUriException e) {
            err.println("nbdgate: " + e.getMessage());
            return 2;
        }
        try {
            NbdQuery.Answer<ExportInfo> answer = NbdQuery.info(target, options.toOptions());
            print(out, target, answer.value(), answer.tls());
            return 0;
        } catch (NbdConnectionException e) {
            err.println("nbdgate: " + e.getMessage());
            return 1;
        }
    }

    static void print(PrintWriter out, NbdUri uri, ExportInfo e, TlsDescription tls) {
        out.println("export=\"" + e.name() + "\":");
        if (e.description() != null && !e.description().isEmpty()) {
            out.println("\tdescription: " + e.description());
        }
        out.println("\texport-size: " + e.size() + " (" + human(e.size()) + ")");
        out.println("\turi: " + uri);
        out.println("\ttls: " + (tls == null ? "no" : tls));
        out.println("\tprotocol: newstyle-fixed, " + switch (e.mode()) {
            case EXTENDED -> "extended headers";
            case STRUCTURED -> "structured replies";
            case SIMPLE -> "simple replies";
        });
        out.println("\tblock_size_minimum: " + e.minimumBlock());
        out.println("\tblock_size_preferred: " + e.preferredBlock());
        out.println("\tblock_size_maximum: " + e.maximumPayload()
                + (e.blockSizeAdvertised() ? "" : " (not advertised; spec defaults)"));
        out.println("\ttransmission_flags: 0x" + Integer.toHexString(e.transmissionFlags()));
        out.println("\tis_read_only: " + e.readOnly());
        out.println("\tis_rotational: " + e.rotational());
        out.println("\tcan_cache: " + e.canCache());
        out.println("\tcan_df: " + e.canDontFragment());
        out.println("\tcan_fast_zero: " + e.canFastZero());
        out.println("\tcan_flush: " + e.canFlush());
        out.println("\tcan_fua: " + e.canFua());
        out.println("\tcan_multi_conn: " + e.canMultiConn());
        out.println("\tcan_trim: " + e.canTrim());
        out.println("\tcan_zero: " + e.canWriteZeroes());
        out.flush();
    }

    static String human(long bytes) {
        String[] units = {"B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
        double v = bytes;
        int u = 0;
        while (v >= 1024 && u < units.length - 1) {
            v /= 1024;
            u++;
        }
        if (u == 0) {
            return bytes + " B";
        }
        // One decimal by arithmetic: String.format's first use costs a tenth of `nbdgate info`.
        long tenths = Math.round(v * 10);
        return tenths / 10 + "." + tenths % 10 + " " + units[u];
    }
}
