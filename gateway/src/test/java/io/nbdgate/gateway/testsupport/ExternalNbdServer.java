package io.nbdgate.gateway.testsupport;

import io.nbdgate.gateway.nbd.client.NbdUri;
import java.io.File;
import java.io.IOException;
import java.net.ServerSocket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * A real NBD server (nbdkit, nbd-server, qemu-nbd, or {@code nbdgate serve}) started on a free port for a
 * test, on loopback or in a {@link NetNamespace}, and stopped by {@link #close()}. It can be killed and
 * started again on the same port with the same command (so the same backing file): a server restart as a
 * client sees it. A missing binary fails the test with the Debian package to install; nothing is skipped.
 * Servers run in the foreground and, where they can, die with this JVM.
 */
public final class ExternalNbdServer implements AutoCloseable {

    // A JVM (nbdgate serve) starting under TCG on a loaded machine takes tens of seconds.
    private static final long START_TIMEOUT_MILLIS = 120_000;
    // A JVM (nbdgate serve) starting under TCG in a guest that shares its host CPU with another has taken just
    // over two minutes before listening; nbd-server's DH parameters (below) over a minute. Others take seconds.
    private static final long SLOW_START_TIMEOUT_MILLIS = 360_000;

    private final String name;
    private final List<String> command;
    private final Path workDir;
    private final ServerHost host;
    private final int port;
    private final String exportName;
    private final Path log;
    private final Path socket;
    private volatile Process process;

    private ExternalNbdServer(String name, List<String> command, Path workDir, ServerHost host, int port, Path socket,
                              String exportName, Path log) {
        this.name = name;
        this.command = List.copyOf(command);
        this.workDir = workDir;
        this.host = host;
        this.port = port;
        this.socket = socket;
        this.exportName = exportName;
        this.log = log;
    }

    /** nbdkit listening on a unix socket in {@code workDir} instead of TCP. */
    public static ExternalNbdServer nbdkitUnix(Path workDir, List<String> options, String plugin, String... params)
            throws IOException {
        String nbdkit = requireBinary("nbdkit", "nbdkit");
        Path socket = workDir.resolve("nbdkit.sock");
        List<String> cmd = new ArrayList<>(List.of(nbdkit, "--foreground", "--exit-with-parent",
                "--unix", socket.toString()));
        cmd.addAll(options);
        cmd.add(plugin);
        cmd.addAll(List.of(params));
        return start("nbdkit", cmd, workDir, ServerHost.LOOPBACK, 0, socket, "");
    }

    /**
     * nbdkit with the given plugin and its parameters, e.g. {@code nbdkit(dir, List.of("--filter=error"),
     * "memory", "size=64M", "error-rate=100%")}. Filters go in {@code options}.
     */
    public static ExternalNbdServer nbdkit(Path workDir, List<String> options, String plugin, String... params)
            throws IOException {
        return nbdkit(ServerHost.LOOPBACK, workDir, options, plugin, params);
    }

    /** nbdkit listening on {@code host}'s address. */
    public static ExternalNbdServer nbdkit(ServerHost host, Path workDir, List<String> options, String plugin,
                                           String... params) throws IOException {
        String nbdkit = requireBinary("nbdkit", "nbdkit");
        int port = freePort();
        List<String> cmd = new ArrayList<>(List.of(nbdkit, "--foreground", "--exit-with-parent",
                "--ipaddr", host.address(), "--port", Integer.toString(port)));
        cmd.addAll(options);
        cmd.add(plugin);
        cmd.addAll(List.of(params));
        return start("nbdkit", cmd, workDir, host, port, null, "");
    }

    /** nbd-server (reference server) exporting {@code file} as {@code exportName}, from a config file in {@code workDir}. */
    public static ExternalNbdServer nbdServer(Path workDir, Path file, String exportName) throws IOException {
        return nbdServer(ServerHost.LOOPBACK, workDir, file, exportName);
    }

    /** nbd-server on {@code host}'s address; it serves one connection at a time and exits when that one ends. */
    public static ExternalNbdServer nbdServer(ServerHost host, Path workDir, Path file, String exportName)
            throws IOException {
        return nbdServer(host, workDir, file, exportName, "");
    }

    /**
     * nbd-server that speaks only TLS (force_tls), with the certificate and key of a {@link TestPki} server
     * directory, limited to TLS 1.2 so that tests cover the older version against a real server; it requires a
     * client certificate that the directory's CA signed.
     */
    public static ExternalNbdServer nbdServerTls(Path workDir, Path file, String exportName, Path tlsDir)
            throws IOException {
        return nbdServer(ServerHost.LOOPBACK, workDir, file, exportName, """
                    certfile = %s
                    keyfile = %s
                    cacertfile = %s
                    force_tls = true
                    tlsprio = NORMAL:-VERS-ALL:+VERS-TLS1.2
                """.formatted(tlsDir.resolve("server-cert.pem"), tlsDir.resolve("server-key.pem"),
                tlsDir.resolve("ca-cert.pem")));
    }

    private static ExternalNbdServer nbdServer(ServerHost host, Path workDir, Path file, String exportName,
                                               String moreGeneric) throws IOException {
        String server = requireBinary("nbd-server", "nbd-server");
        int port = freePort();
        Path config = workDir.resolve("nbd-server.conf");
        Files.writeString(config, """
                [generic]
                    port = %d
                    listenaddr = %s
                    allowlist = true
                %s[%s]
                    exportname = %s
                    flush = true
                    fua = true
                    trim = true
                """.formatted(port, host.address(), moreGeneric, exportName, file.toAbsolutePath()));
        // -d keeps it in the foreground (no daemon), so destroying the process stops the server. It also makes
        // it serve one client and exit: a client that gives up before the server accepted it ends the server.
        return start("nbd-server", List.of(server, "-C", config.toString(), "-d"), workDir, host, port, null,
                exportName);
    }

    /**
     * nbdgate's own server ({@code bin/nbdgate serve}) exporting {@code file} as {@code exportName} on
     * {@code host}'s address: a process of its own, so it can be killed like the others. Needs the built jar
     * and the system property nbdgate.root (scripts/test-ublk sets it).
     */
    public static ExternalNbdServer nbdgateServe(ServerHost host, Path workDir, Path file, String exportName)
            throws IOException {
        String root = System.getProperty("nbdgate.root");
        if (root == null) {
            throw new IllegalStateException("system property nbdgate.root is not set; run through scripts/test-ublk");
        }
        int port = freePort();
        return start("nbdgate-serve", List.of(Path.of(root, "bin/nbdgate").toString(), "serve", "--export",
                exportName + "=file:" + file.toAbsolutePath(), "--bind", host.address(), "--port",
                Integer.toString(port)), workDir, host, port, null, exportName);
    }

    /**
     * qemu-nbd serving {@code image} (raw) as {@code exportName}. It must be qemu-nbd 10 or newer: older
     * ones lack NBD extended headers, and that is a failure of the environment, not a skip.
     */
    public static ExternalNbdServer qemuNbd(Path workDir, Path image, String exportName) throws IOException {
        return qemuNbd(workDir, image, exportName, List.of());
    }

    /** qemu-nbd that requires TLS with the certificates of a {@link TestPki} server directory. */
    public static ExternalNbdServer qemuNbdTls(Path workDir, Path image, String exportName, Path tlsDir)
            throws IOException {
        return qemuNbd(workDir, image, exportName, List.of("--object",
                "tls-creds-x509,id=tls0,endpoint=server,verify-peer=off,dir=" + tlsDir, "--tls-creds=tls0"));
    }

    private static ExternalNbdServer qemuNbd(Path workDir, Path image, String exportName, List<String> options)
            throws IOException {
        String qemuNbd = qemuNbdBinary();
        int major = qemuNbdMajorVersion(qemuNbd);
        if (major < 10) {
            throw new IllegalStateException(qemuNbd + " is version " + major + ".x, which has no NBD extended headers;"
                    + " scripts/test unpacks qemu-utils 10 from bookworm-backports into ~/.cache/nbdgate/qemu-utils-bpo"
                    + " (or set NBDGATE_QEMU_BIN to a directory holding qemu-nbd 10+)");
        }
        int port = freePort();
        List<String> cmd = new ArrayList<>(List.of(qemuNbd, "--format=raw", "--export-name=" + exportName,
                "--bind=127.0.0.1", "--port=" + port, "--persistent", "--shared=8", "--cache=none", "--aio=threads"));
        cmd.addAll(options);
        cmd.add(image.toAbsolutePath().toString());
        return start("qemu-nbd", cmd, workDir, ServerHost.LOOPBACK, port, null, exportName);
    }

    /** qemu-nbd from NBDGATE_QEMU_BIN, the scripts' cache, or PATH, in that order. */
    public static String qemuNbdBinary() {
        String dir = System.getenv("NBDGATE_QEMU_BIN");
        if (dir != null && !dir.isEmpty() && new File(dir, "qemu-nbd").canExecute()) {
            return new File(dir, "qemu-nbd").getPath();
        }
        File cached = new File(System.getProperty("user.home"), ".cache/nbdgate/qemu-utils-bpo/usr/bin/qemu-nbd");
        if (cached.canExecute()) {
            return cached.getPath();
        }
        return requireBinary("qemu-nbd", "qemu-utils");
    }

    static int qemuNbdMajorVersion(String qemuNbd) throws IOException {
        String out = run(qemuNbd, "--version");
        Matcher m = Pattern.compile("qemu-nbd (\\d+)\\.").matcher(out);
        if (!m.find()) {
            throw new IllegalStateException("cannot read the version of " + qemuNbd + ": " + out);
        }
        return Integer.parseInt(m.group(1));
    }

    public int port() {
        return port;
    }

    /** The address clients dial (loopback, or the namespace's). */
    public String address() {
        return host.address();
    }

    /** {@link #address()} and {@link #port()}. */
    public java.net.InetSocketAddress socketAddress() {
        return new java.net.InetSocketAddress(host.address(), port);
    }

    /** nbd://127.0.0.1:PORT/EXPORT of this server. */
    public NbdUri uri() {
        return uri(exportName);
    }

    public NbdUri uri(String export) {
        if (socket != null) {
            return new NbdUri(false, null, 0, socket.toString(), export);
        }
        return new NbdUri(false, host.address(), port, null, export);
    }

    /** What the server printed so far (for assertion messages). */
    public String output() {
        try {
            return Files.readString(log, StandardCharsets.UTF_8);
        } catch (IOException e) {
            return "(no output: " + e.getMessage() + ")";
        }
    }

    /** SIGKILL: the server vanishes without a word, as when its machine dies. */
    public void kill() throws InterruptedException {
        Process p = process;
        p.destroyForcibly();
        if (!p.waitFor(30, TimeUnit.SECONDS)) {
            throw new IllegalStateException(this + " (pid " + p.pid() + ") outlived SIGKILL by 30 s");
        }
    }

    /**
     * SIGSTOP: the server stops answering and its connections stay open, so whatever is sent to it stays in
     * flight until a {@link #kill()}; a frozen server is gone from its clients' view without their noticing yet.
     */
    public void freeze() throws IOException, InterruptedException {
        Process stop = new ProcessBuilder("kill", "-STOP", Long.toString(process.pid())).redirectErrorStream(true)
                .start();
        if (stop.waitFor() != 0) {
            throw new IllegalStateException("kill -STOP " + this + ": " + new String(stop.getInputStream().readAllBytes()));
        }
    }

    /** Starts the same command again, after {@link #kill()}: same port, same export, same backing file. */
    public void startAgain() throws IOException {
        if (process.isAlive()) {
            throw new IllegalStateException(this + " is still running; kill() it first");
        }
        launch();
    }

    /** {@link #kill()} then {@link #startAgain()}: a server restart as its clients see it. */
    public void restart() throws IOException, InterruptedException {
        kill();
        startAgain();
    }

    public boolean isAlive() {
        return process.isAlive();
    }

    @Override
    public void close() {
        process.destroy();
        try {
            if (!process.waitFor(5, TimeUnit.SECONDS)) {
                process.destroyForcibly();
                process.waitFor(5, TimeUnit.SECONDS);
            }
        } catch (InterruptedException e) {
            process.destroyForcibly();
            Thread.currentThread().interrupt();
        }
    }

    @Override
    public String toString() {
        return name + " on " + (socket != null ? socket : host.address() + ":" + port);
    }

    // ---- helpers ----

    private static ExternalNbdServer start(String name, List<String> cmd, Path workDir, ServerHost host, int port,
                                           Path socket, String exportName) throws IOException {
        Path log = Files.createTempFile(workDir, name, ".log");
        ExternalNbdServer server = new ExternalNbdServer(name, cmd, workDir, host, port, socket, exportName, log);
        server.launch();
        return server;
    }

    private void launch() throws IOException {
        // SIGPIPE ignored, as systemd starts services (IgnoreSIGPIPE=yes): a server writing a reply to a connection
        // the client just reset must not die of it. exec keeps the PID the server's own.
        List<String> ignoringSigpipe = new ArrayList<>(List.of("sh", "-c", "trap '' PIPE; exec \"$@\"", "sh"));
        ignoringSigpipe.addAll(command);
        List<String> cmd = host.command(ignoringSigpipe);
        ProcessBuilder pb = new ProcessBuilder(cmd).directory(workDir.toFile()).redirectErrorStream(true)
                .redirectOutput(ProcessBuilder.Redirect.appendTo(log.toFile()));
        if (name.equals("nbdgate-serve")) {
            // A test server restarted five times in a run: C1 and the serial collector start it sooner under TCG.
            pb.environment().put("NBDGATE_JAVA_OPTS", "-XX:TieredStopAtLevel=1 -XX:+UseSerialGC");
        }
        Process p = pb.start();
        process = p;
        boolean slowStart = name.equals("nbdgate-serve") || name.equals("nbd-server");
        long timeout = slowStart ? SLOW_START_TIMEOUT_MILLIS : START_TIMEOUT_MILLIS;
        long deadline = System.currentTimeMillis() + timeout;
        while (true) {
            if (!p.isAlive()) {
                throw new IllegalStateException(name + " exited with " + p.exitValue() + " before listening: "
                        + String.join(" ", cmd) + "\n" + output());
            }
            // Probe by the kernel's socket table, not by connecting: a probe would be a client the server logs and
            // serves. nbd-server listens before it generates its GnuTLS DH parameters, and accepts only after.
            if (socket != null ? Files.exists(socket)
                    : listening(p.pid(), port) && (!name.equals("nbd-server") || waitsInTheKernel(p.pid()))) {
                return;
            }
            if (System.currentTimeMillis() > deadline) {
                close();
                throw new IllegalStateException(name + " did not listen on port " + port + " within "
                        + timeout + " ms\n" + output());
            }
            try {
                Thread.sleep(50);
            } catch (InterruptedException e) {
                close();
                Thread.currentThread().interrupt();
                throw new IOException("interrupted while starting " + name, e);
            }
        }
    }

    /**
     * True if some socket listens on port {@code port} (state 0A) in the network namespace of process
     * {@code pid}: /proc/PID/net shows that process's namespace, so this works for a server in a NetNamespace.
     */
    static boolean listening(long pid, int port) throws IOException {
        String hexPort = String.format(":%04X ", port);
        for (String table : List.of("/proc/" + pid + "/net/tcp", "/proc/" + pid + "/net/tcp6")) {
            Path p = Path.of(table);
            if (!Files.exists(p)) {
                continue;
            }
            List<String> lines;
            try {
                lines = Files.readAllLines(p);
            } catch (IOException gone) {
                return false; // the process just exited; the caller sees that next
            }
            for (String line : lines) {
                String[] f = line.trim().split("\\s+");
                if (f.length > 3 && (f[1] + " ").endsWith(hexPort) && f[3].equals("0A")) {
                    return true;
                }
            }
        }
        return false;
    }

    /**
     * Whether process {@code pid} waits in a system call instead of computing (/proc/PID/syscall says "running"
     * then): nbd-server computes its DH parameters after it listens, and waits for clients or serves one after.
     * Unreadable (no permission): yes, the socket table decides.
     */
    private static boolean waitsInTheKernel(long pid) {
        try {
            return !Files.readString(Path.of("/proc/" + pid + "/syscall")).startsWith("running");
        } catch (IOException e) {
            return true;
        }
    }

    /** The binary on PATH, or a failure that names the Debian package to install. */
    public static String requireBinary(String binary, String debianPackage) {
        for (String dir : System.getenv().getOrDefault("PATH", "/usr/bin:/bin:/usr/sbin:/sbin").split(":")) {
            File f = new File(dir, binary);
            if (f.canExecute()) {
                return f.getPath();
            }
        }
        for (String dir : List.of("/usr/sbin", "/sbin", "/usr/bin")) {
            File f = new File(dir, binary);
            if (f.canExecute()) {
                return f.getPath();
            }
        }
        throw new IllegalStateException(binary + " is not installed: apt-get install " + debianPackage);
    }

    private static int freePort() throws IOException {
        try (ServerSocket s = new ServerSocket(0, 1, java.net.InetAddress.getLoopbackAddress())) {
            return s.getLocalPort();
        }
    }

    private static String run(String... cmd) throws IOException {
        Process p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        try {
            p.waitFor(10, TimeUnit.SECONDS);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        return out;
    }
}
