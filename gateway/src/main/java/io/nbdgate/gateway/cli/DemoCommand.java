package io.nbdgate.gateway.cli;

import io.nbdgate.gateway.config.DeviceConfig;
import io.nbdgate.gateway.config.ZeroCopy;
import io.nbdgate.gateway.device.DeviceOptions;
import io.nbdgate.gateway.device.EventLoops;
import io.nbdgate.gateway.device.NbdDevice;
import io.nbdgate.gateway.device.QuietUringTransport;
import io.nbdgate.gateway.link.NbdConnectionException;
import io.nbdgate.gateway.nbd.server.EmbeddedNbdServer;
import io.nbdgate.gateway.nbd.server.Export;
import io.nbdgate.gateway.nbd.server.ExportSpec;
import io.nbdgate.gateway.nbd.server.NbdServerConfig;
import io.nbdgate.gateway.nbd.server.ServerTls;
import io.nbdgate.gateway.tls.ClientCredentials;
import io.nbdgate.gateway.tls.ServerCredentials;
import io.nbdgate.gateway.tls.TlsSettings;
import io.nbdgate.protocol.server.ServerHandshake;
import io.vertx.core.Vertx;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.security.MessageDigest;
import java.util.HexFormat;
import java.util.List;
import java.util.Random;
import java.util.concurrent.Callable;
import java.util.concurrent.TimeUnit;
import picocli.CommandLine.Model.CommandSpec;

import static io.nbdgate.gateway.cli.CommandModel.flag;
import static io.nbdgate.gateway.cli.CommandModel.option;

/**
 * {@code nbdgate demo}: the whole product in one run, with nothing external — an embedded NBD server
 * with a memory export, attached as /dev/ublkbN, formatted ext4, mounted, a file written and read back
 * with its checksum compared, then everything undone.
 */
final class DemoCommand implements Callable<Integer> {

    /** What --help says of the command. */
    static final String[] DESCRIPTION = {
        "Run the embedded NBD server with a memory export, attach it as /dev/ublkbN, format it ext4,",
        "mount it, write a file and read it back (checksums compared, caches dropped in between), print",
        "what happened and the throughput, and clean everything up. Needs root and a kernel with ublk."
    };

    final CommandSpec spec = CommandModel.command(this, "demo", DESCRIPTION);

    private String size;
    private String fileSize;
    private String zeroCopy;
    private int connectTimeoutSeconds;
    private boolean tls;
    private int queues;

    DemoCommand() {
        spec.usageMessage().sortOptions(false);
        spec.addOption(option("--size", String.class, v -> size = v).paramLabel("SIZE").defaultValue("512M")
                .description("Size of the memory export (K, M, G suffixes). Default: ${DEFAULT-VALUE}.").build());
        spec.addOption(option("--file-size", String.class, v -> fileSize = v).paramLabel("SIZE").defaultValue("128M")
                .description("Size of the file written and read back. Default: ${DEFAULT-VALUE}.").build());
        spec.addOption(option("--zero-copy", String.class, v -> zeroCopy = v)
                .paramLabel("auto|on|off").defaultValue("auto")
                .description("Buffer mode policy, as for attach. Default: ${DEFAULT-VALUE}.").build());
        spec.addOption(option("--connect-timeout", int.class, v -> connectTimeoutSeconds = v)
                .paramLabel("SECONDS").defaultValue("10")
                .description("Connecting plus the handshakes may take this long (default: ${DEFAULT-VALUE}; a slow "
                        + "emulated machine may need more, above all with --tls).").build());
        spec.addOption(flag("--tls", v -> tls = v)
                .description("Run it over TLS: the server requires it (a pre-shared key made for the run), the "
                        + "device's records are encrypted by the kernel (kernel TLS).").build());
        spec.addOption(option("--queues", int.class, v -> queues = v).paramLabel("N").defaultValue("2")
                .description("ublk queues (= NBD connections; the embedded server allows multi-conn). Default: "
                        + "${DEFAULT-VALUE}.").build());
    }

    @Override
    public Integer call() throws Exception {
        long exportBytes;
        long fileBytes;
        ZeroCopy policy;
        try {
            exportBytes = ExportSpec.parseSize(size);
            fileBytes = ExportSpec.parseSize(fileSize);
            policy = ZeroCopy.valueOf(zeroCopy.toUpperCase(java.util.Locale.ROOT));
        } catch (IllegalArgumentException e) {
            System.err.println("nbdgate demo: " + e.getMessage());
            return 2;
        }
        if (fileBytes > exportBytes / 2) {
            System.err.println("nbdgate demo: --file-size must be at most half of --size (the file system needs room)");
            return 2;
        }
        if (queues < 1 || queues > DeviceConfig.MAX_QUEUES) {
            System.err.println("nbdgate demo: --queues must be from 1 to " + DeviceConfig.MAX_QUEUES);
            return 2;
        }
        Path work = Files.createTempDirectory("nbdgate-demo-");
        Path mnt = Files.createDirectories(work.resolve("mnt"));
        // The server's loops and the device's: one Vert.x with the embedded server's limits.
        Vertx vertx = QuietUringTransport.vertx(EmbeddedNbdServer.vertxOptions());
        EmbeddedNbdServer server = null;
        NbdDevice device = null;
        boolean mounted = false;
        try {
            NbdServerConfig config = NbdServerConfig.tcp("127.0.0.1", 0, List.of(Export.memory("demo", exportBytes, false)));
            ClientCredentials credentials = null;
            if (tls) {
                byte[] key = new byte[32];
                new java.security.SecureRandom().nextBytes(key);
                Path keys = Files.writeString(work.resolve("demo.psk"), "demo:" + java.util.HexFormat.of().formatHex(key)
                        + "\n");
                config = config.withTls(new ServerTls(ServerHandshake.Tls.REQUIRE, ServerCredentials.psk(keys)));
                credentials = ClientCredentials.load(new TlsSettings(null, null, null, null, keys, "demo"), null);
            }
            server = EmbeddedNbdServer.deploy(vertx, config).await();
            step("embedded NBD server: %s (memory export 'demo', %s, %s transport)", server.uri("demo"),
                    formatBytes(exportBytes), server.transport());
            DeviceOptions o = new DeviceOptions("demo", new java.net.InetSocketAddress("127.0.0.1",
                    server.port()), "demo", queues, DeviceConfig.DEFAULT_DEPTH, policy, false, -1,
                    java.time.Duration.ofSeconds(Math.max(1, connectTimeoutSeconds)), DeviceConfig.DEFAULT_IO_TIMEOUT,
                    null).withTls(credentials);
            device = NbdDevice.attach(o, EventLoops.of(vertx));
            step("attached: %s, %d queue(s), buffer mode %s (%s)", device.blockDevice(), device.queues(),
                    device.mode().label(), device.modeReason());
            if (tls) {
                step("TLS: %s", device.linkStates().getFirst().tls());
            }
            run("mkfs.ext4", "-q", "-F", device.blockDevice());
            step("formatted ext4");
            run("mount", device.blockDevice(), mnt.toString());
            mounted = true;
            step("mounted on %s", mnt);

            Path file = mnt.resolve("demo.bin");
            MessageDigest written = MessageDigest.getInstance("SHA-256");
            long t0 = System.nanoTime();
            writeRandom(file, fileBytes, written);
            double writeSeconds = (System.nanoTime() - t0) / 1e9;
            step("wrote %s in %.2f s (%s/s), fsync'd", formatBytes(fileBytes), writeSeconds,
                    formatBytes((long) (fileBytes / writeSeconds)));

            run("umount", mnt.toString());
            mounted = false;
            run("mount", device.blockDevice(), mnt.toString()); // a fresh mount reads from the device, not the page cache
            mounted = true;
            long t1 = System.nanoTime();
            String read = sha256(file);
            double readSeconds = (System.nanoTime() - t1) / 1e9;
            boolean same = read.equals(HexFormat.of().formatHex(written.digest()));
            step("remounted and read it back in %.2f s (%s/s): sha256 %s", readSeconds,
                    formatBytes((long) (fileBytes / readSeconds)), same ? "matches" : "DIFFERS");
            if (!same) {
                return 1;
            }
            return 0;
        } catch (NbdConnectionException e) {
            System.err.println("nbdgate demo: " + e.getMessage());
            return 1;
        } finally {
            if (mounted) {
                runQuietly("umount", mnt.toString());
            }
            if (device != null) {
                device.close();
                step("unmounted and detached %s", device.blockDevice());
            }
            if (server != null) {
                server.close();
                step("server stopped");
            }
            vertx.close().await();
            runQuietly("rm", "-rf", work.toString());
        }
    }

    private static void writeRandom(Path file, long bytes, MessageDigest digest) throws IOException {
        // One random MiB, stamped with its index per chunk: the timing then measures the device, not the RNG.
        byte[] chunk = new byte[1 << 20];
        new Random(7).nextBytes(chunk);
        java.nio.ByteBuffer stamp = java.nio.ByteBuffer.wrap(chunk);
        try (OutputStream out = Files.newOutputStream(file, StandardOpenOption.CREATE_NEW)) {
            for (long done = 0; done < bytes; done += chunk.length) {
                stamp.putLong(0, done);
                int n = (int) Math.min(chunk.length, bytes - done);
                out.write(chunk, 0, n);
                digest.update(chunk, 0, n);
            }
        }
        run("sync", "-f", file.toString());
    }

    private static String sha256(Path file) throws Exception {
        return run("sha256sum", file.toString()).split(" ")[0];
    }

    private static String formatBytes(long n) {
        return n >= 1L << 30 ? String.format("%.1f GiB", n / (double) (1L << 30))
                : String.format("%.1f MiB", n / (double) (1L << 20));
    }

    private static void step(String format, Object... args) {
        System.out.printf("  " + format + "%n", args);
        System.out.flush();
    }

    private static String run(String... cmd) throws IOException {
        Process p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        try {
            if (!p.waitFor(10, TimeUnit.MINUTES) || p.exitValue() != 0) {
                throw new IOException(String.join(" ", cmd) + " failed: " + out.strip());
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IOException("interrupted", e);
        }
        return out;
    }

    private static void runQuietly(String... cmd) {
        try {
            run(cmd);
        } catch (IOException e) {
            System.err.println("nbdgate demo: cleanup: " + e.getMessage());
        }
    }
}
