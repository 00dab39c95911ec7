package io.nbdgate.gateway.cli;

import io.nbdgate.gateway.config.ProcessUser;
import io.nbdgate.protocol.TransmissionFlag;
import io.nbdgate.protocol.server.ExportCatalog;
import io.nbdgate.protocol.server.OfferedExport;
import io.nbdgate.protocol.server.ServerHandshake;
import java.io.IOException;
import java.io.OutputStream;
import java.io.PrintStream;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.ServerSocketChannel;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Optional;

/**
 * The workload from which the JDK's AOT cache for the client commands is recorded ({@code -XX:AOTCacheOutput};
 * gateway/pom.xml runs it at package time, scripts/package again for the packaged runtime): every client
 * command once, as a user runs it, against a local NBD server and a control socket played here. Only what those
 * commands load may run: every class in the cache is loaded at start-up, so a Vert.x class touched here would
 * be loaded by every {@code nbdgate list}.
 */
final class AotTraining {
    private static final String DEVICES = "[{\"name\":\"train\",\"device\":\"/dev/ublkb0\",\"export\":\"\","
            + "\"server\":\"127.0.0.1:10809\",\"mode\":\"zero-copy\",\"queues\":1,\"state\":\"live\",\"pid\":0}]";
    private static final String DETACHED = "{\"detached\":\"/dev/ublkb0\",\"name\":\"train\"}";

    private AotTraining() {
    }

    public static void main(String[] args) throws Exception {
        Path runDir = Files.createTempDirectory("nbdgate-aot-training");
        // A user's command finds its run directory by its uid; this one is told where it is, so look the uid up
        // as they do: a class missing from the cache is read from the jar, whose index alone takes milliseconds.
        ProcessUser.uid();
        System.setProperty("nbdgate.runDir", runDir.toString());
        Path control = runDir.resolve("0.sock");
        PrintStream out = System.out;
        PrintStream err = System.err;
        PrintStream quiet = new PrintStream(OutputStream.nullOutputStream(), true, StandardCharsets.UTF_8);
        try (ServerSocketChannel nbd = ServerSocketChannel.open()
                     .bind(new InetSocketAddress(InetAddress.getLoopbackAddress(), 0));
             ServerSocketChannel ctl = ServerSocketChannel.open(StandardProtocolFamily.UNIX)
                     .bind(UnixDomainSocketAddress.of(control))) {
            Thread.ofPlatform().daemon().start(() -> serveNbd(nbd));
            Thread.ofPlatform().daemon().start(() -> serveControl(ctl));
            String uri = "nbd://127.0.0.1:" + ((InetSocketAddress) nbd.getLocalAddress()).getPort() + "/";
            List<String[]> commands = List.of(new String[] {"--help"}, new String[] {"--version"},
                    new String[] {"help", "list"}, new String[] {"list"}, new String[] {"detach", "train"},
                    new String[] {"info", uri}, new String[] {"list", uri}, new String[] {"features"},
                    new String[] {"info", "--help"}, new String[] {"info", "nbd://127.0.0.1:1/"},
                    new String[] {"info", "bad:uri"});
            System.setOut(quiet);
            System.setErr(quiet);
            for (String[] command : commands) {
                Main.run(command);
            }
        } finally {
            System.setOut(out);
            System.setErr(err); // a failure of the training must be seen in the build's output
            Files.deleteIfExists(control);
            Files.deleteIfExists(runDir);
        }
        out.println("AOT training: ran the client commands");
    }

    /** Answers every handshake with one export, then waits for the client to hang up. */
    private static void serveNbd(ServerSocketChannel server) {
        OfferedExport export = new OfferedExport("", "AOT training", 1 << 20,
                TransmissionFlag.HAS_FLAGS.mask() | TransmissionFlag.SEND_FLUSH.mask(), 1, 4096, 1 << 25);
        ExportCatalog catalog = new ExportCatalog() {
            @Override
            public Optional<OfferedExport> find(String name) {
                return Optional.of(export);
            }

            @Override
            public List<OfferedExport> all() {
                return List.of(export);
            }
        };
        while (server.isOpen()) {
            try (SocketChannel c = server.accept()) {
                ServerHandshake h = new ServerHandshake(catalog, ServerHandshake.Policy.OFFER_ALL);
                List<ServerHandshake.Action> actions = h.start();
                ByteBuffer in = ByteBuffer.allocate(4096);
                while (true) {
                    for (ServerHandshake.Action a : actions) {
                        if (a instanceof ServerHandshake.Send s) {
                            c.write(ByteBuffer.wrap(s.bytes()));
                        }
                    }
                    if (c.read(in.clear()) < 0) {
                        break;
                    }
                    actions = h.state() == ServerHandshake.State.TRANSMISSION ? List.of() : h.receive(in.flip());
                }
            } catch (IOException e) {
                return; // closed at the end of training
            }
        }
    }

    /** Plays a control socket: GET /devices lists one device, anything else detaches it. */
    private static void serveControl(ServerSocketChannel server) {
        while (server.isOpen()) {
            try (SocketChannel c = server.accept()) {
                ByteBuffer in = ByteBuffer.allocate(4096);
                c.read(in);
                String body = new String(in.array(), 0, in.position(), StandardCharsets.US_ASCII).startsWith("GET")
                        ? DEVICES : DETACHED;
                c.write(StandardCharsets.US_ASCII.encode("HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
                        + "content-length: " + body.length() + "\r\n\r\n" + body));
            } catch (IOException e) {
                return;
            }
        }
    }
}
