package io.nbdgate.gateway.cli;

import io.nbdgate.gateway.nbd.server.EmbeddedNbdServer;
import io.nbdgate.gateway.nbd.server.Export;
import io.nbdgate.gateway.nbd.server.ExportSpec;
import io.nbdgate.gateway.nbd.server.NbdServerConfig;
import io.nbdgate.gateway.nbd.server.ServerTls;
import io.nbdgate.gateway.tls.ServerCredentials;
import io.nbdgate.gateway.tls.TlsException;
import io.nbdgate.protocol.server.ServerHandshake;
import java.io.IOException;
import java.io.PrintWriter;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;
import java.util.concurrent.CountDownLatch;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine;

import static io.nbdgate.gateway.cli.CommandModel.flag;
import static io.nbdgate.gateway.cli.CommandModel.option;

/** {@code nbdgate serve}: the embedded NBD server as a standalone tool. */
final class ServeCommand implements Callable<Integer> {

    /** What --help says of the command. */
    static final String[] DESCRIPTION = {
        "Serve memory or file exports over NBD until SIGINT or SIGTERM, then close cleanly. "
                + "Prints one line saying where it listens.",
        "Every export advertises CAN_MULTI_CONN, FLUSH, FUA, TRIM, WRITE_ZEROES, FAST_ZERO and CACHE "
                + "(the write features only when writable). The first export is also the default export (the empty name).",
        "Exit code 2 on bad arguments, 1 when the server cannot start (e.g. the port is taken)."
    };

    final CommandSpec spec = CommandModel.command(this, "serve", DESCRIPTION);

    private List<ExportSpec> exports;
    private String bind;
    private int port;
    private Path unix;
    private boolean readOnly;
    private String tls;
    private Path tlsCertificates;
    private Path tlsPsk;

    @SuppressWarnings("unchecked") // the list picocli fills with the converter's ExportSpecs
    ServeCommand() {
        spec.addOption(option("--export", List.class, v -> exports = v).auxiliaryTypes(ExportSpec.class)
                .paramLabel("NAME=BACKEND").required(true).converters(new ExportSpecConverter())
                .description("An export; repeat for several. NAME=memory:SIZE is a sparse in-memory disk (lost on "
                        + "exit); NAME=file:PATH[:SIZE] serves a file, created sparse with SIZE if missing "
                        + "(an existing file keeps its size). SIZE is bytes or takes K, M, G, T (powers of "
                        + "1024), e.g. 512M, 1G.").build());
        spec.addOption(option("--bind", String.class, v -> bind = v).paramLabel("ADDR").defaultValue("127.0.0.1")
                .description("The address to listen on (default: ${DEFAULT-VALUE}; 0.0.0.0 or :: for all).").build());
        spec.addOption(option("--port", int.class, v -> port = v).paramLabel("N").defaultValue("10809")
                .description("The TCP port (default: ${DEFAULT-VALUE}, the IANA NBD port; 0 picks a free one and "
                        + "prints it).").build());
        spec.addOption(option("--unix", Path.class, v -> unix = v).paramLabel("PATH")
                .description("Listen on this unix socket instead of TCP (--bind and --port are then "
                        + "ignored).").build());
        spec.addOption(flag("--read-only", v -> readOnly = v)
                .description("Make every export read-only: writes, trims and zeroing fail with EPERM.").build());
        spec.addOption(option("--tls", String.class, v -> tls = v).paramLabel("require|on|off")
                .description("TLS after NBD_OPT_STARTTLS: require it (nothing else is answered before it), offer it, "
                        + "or refuse it. Default: require when --tls-certificates or --tls-psk is given, "
                        + "else off.").build());
        spec.addOption(option("--tls-certificates", Path.class, v -> tlsCertificates = v).paramLabel("DIR")
                .description("The server's certificate and key as server-cert.pem and server-key.pem in DIR "
                        + "(nbdkit's layout).").build());
        spec.addOption(option("--tls-psk", Path.class, v -> tlsPsk = v).paramLabel("FILE")
                .description("Pre-shared keys instead of a certificate: identity:hexkey lines (as psktool writes "
                        + "them); any identity of the file may connect.").build());
    }

    @Override
    public Integer call() throws Exception {
        PrintWriter out = spec.commandLine().getOut();
        PrintWriter err = spec.commandLine().getErr();
        if (port < 0 || port > 65535) return usage(err, "--port " + port + " is not in 0..65535");
        ServerTls serverTls;
        try {
            serverTls = serverTls();
        } catch (IllegalArgumentException | TlsException e) {
            return usage(err, e.getMessage());
        }
        List<Export> opened = new ArrayList<>();
        NbdServerConfig config;
        try {
            for (ExportSpec e : exports) opened.add(e.open(readOnly));
            config = (unix != null ? NbdServerConfig.unix(unix, opened) : NbdServerConfig.tcp(bind, port, opened))
                    .withTls(serverTls);
        } catch (IOException | IllegalArgumentException e) {
            closeAll(opened);
            return usage(err, e instanceof java.nio.file.NoSuchFileException n
                    ? n.getFile() + ": " + n.getReason() : String.valueOf(e.getMessage()));
        }
        EmbeddedNbdServer server;
        try {
            server = EmbeddedNbdServer.start(config);
        } catch (Exception e) {
            closeAll(opened);
            Throwable c = e.getCause() != null ? e.getCause() : e;
            err.println("nbdgate: cannot listen on " + (unix != null ? unix : bind + ":" + port) + ": " + c.getMessage());
            err.flush();
            return 1;
        }
        List<String> uris = new ArrayList<>();
        for (Export e : opened) {
            uris.add(server.uri(e.name()));
        }
        String transport = server.transport();
        // The hook sees the server only as AutoCloseable: a lambda's parameter types are loaded whenever picocli
        // reflects on this class, and EmbeddedNbdServer would bring Vert.x into every client command's start.
        AutoCloseable closer = server;
        CountDownLatch stopped = new CountDownLatch(1);
        // SIGINT and SIGTERM run shutdown hooks: stop serving and close (fsync) the exports there.
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            try {
                closer.close();
            } catch (Exception e) {
                err.println("nbdgate: error while stopping: " + e.getMessage());
                err.flush();
            } finally {
                stopped.countDown();
            }
        }, "nbdgate-serve-shutdown"));
        out.println("nbdgate: serving " + String.join(", ", uris) + " (" + transport + " transport"
                + (serverTls.mode() == ServerHandshake.Tls.OFF ? "" : ", TLS " + serverTls.mode().name().toLowerCase(
                        java.util.Locale.ROOT) + " with " + (tlsPsk != null ? "PSK" : "X.509")) + ")");
        out.flush();
        stopped.await();
        return 0;
    }

    /** --tls with its credentials, read now: a bad file is a usage error before anything listens. */
    private ServerTls serverTls() {
        if (tlsCertificates != null && tlsPsk != null) {
            throw new IllegalArgumentException("--tls-certificates and --tls-psk exclude each other");
        }
        boolean credentials = tlsCertificates != null || tlsPsk != null;
        ServerHandshake.Tls mode = switch (tls == null ? (credentials ? "require" : "off") : tls) {
            case "require" -> ServerHandshake.Tls.REQUIRE;
            case "on" -> ServerHandshake.Tls.ON;
            case "off" -> ServerHandshake.Tls.OFF;
            default -> throw new IllegalArgumentException("--tls must be require, on or off, not '" + tls + "'");
        };
        if (mode == ServerHandshake.Tls.OFF) {
            if (credentials) {
                throw new IllegalArgumentException("--tls off with TLS credentials: drop them, or use --tls on|require");
            }
            return ServerTls.OFF;
        }
        if (!credentials) {
            throw new IllegalArgumentException("--tls " + tls + " needs --tls-certificates DIR or --tls-psk FILE");
        }
        return new ServerTls(mode, tlsPsk != null ? ServerCredentials.psk(tlsPsk)
                : ServerCredentials.certificates(tlsCertificates));
    }

    private static int usage(PrintWriter err, String message) {
        err.println("nbdgate serve: " + message);
        err.flush();
        return 2;
    }

    private static void closeAll(List<Export> exports) {
        for (Export e : exports) {
            try {
                e.close();
            } catch (IOException ignored) {
                // already failing; the first error is the one reported
            }
        }
    }

    /** picocli converter: a malformed --export is a usage error (one line, exit 2). */
    static final class ExportSpecConverter implements CommandLine.ITypeConverter<ExportSpec> {
        @Override
        public ExportSpec convert(String value) {
            try {
                return ExportSpec.parse(value);
            } catch (IllegalArgumentException e) {
                throw new CommandLine.TypeConversionException(e.getMessage());
            }
        }
    }
}
