package io.nbdgate.gateway.cli;

import io.nbdgate.gateway.config.ConfigException;
import io.nbdgate.gateway.config.DaemonConfig;
import io.nbdgate.gateway.config.DeviceConfig;
import io.nbdgate.gateway.config.MemorySettings;
import io.nbdgate.gateway.control.ControlClient;
import io.nbdgate.gateway.device.DeviceOptions;
import io.nbdgate.gateway.device.DeviceRecords;
import io.nbdgate.gateway.device.EventLoops;
import io.nbdgate.gateway.device.NbdDevice;
import io.nbdgate.gateway.device.QuietUringTransport;
import io.nbdgate.gateway.link.NbdConnectionException;
import io.nbdgate.ublk.BufferMode;
import io.vertx.core.Vertx;
import io.vertx.core.VertxOptions;
import io.vertx.core.json.JsonArray;
import io.vertx.core.json.JsonObject;
import java.time.Duration;
import java.util.concurrent.Callable;
import picocli.CommandLine.Model.CommandSpec;

import static io.nbdgate.gateway.cli.CommandModel.flag;
import static io.nbdgate.gateway.cli.CommandModel.option;
import static io.nbdgate.gateway.cli.CommandModel.parameter;

/**
 * {@code nbdgate attach URI}: serves one NBD export as /dev/ublkbN in the foreground until SIGINT or
 * SIGTERM, then detaches cleanly. The flags are validated by the daemon's config schema, so a flag
 * and the YAML key of the same name accept exactly the same values.
 */
final class AttachCommand implements Callable<Integer> {

    /** What --help says of the command. */
    static final String[] DESCRIPTION = {
        "Attach an NBD export as a local block device (/dev/ublkbN) and serve it in the foreground.",
        "Prints the device path once the device is live (also /dev/nbdgate/NAME; under systemd READY=1 then).",
        "'nbdgate detach' or SIGINT/SIGTERM detach it cleanly.",
        "Exit codes: 0 after 'nbdgate detach' (130/143 after SIGINT/SIGTERM, also clean), 1 if attaching",
        "failed (nothing is left behind), 2 on bad input, 3 when another process stopped or deleted the",
        "device (e.g. 'ublk del'); nbdgate then let go of it and did not add it again.",
        "Run by a user other than root (with the udev rule 99-nbdgate-rootless.rules installed) it makes an",
        "unprivileged device that only this user and root may open: copy mode, no crash recovery."
    };

    final CommandSpec spec = CommandModel.command(this, "attach", DESCRIPTION);

    private String uri;
    private String queues;
    private int depth;
    private String zeroCopy;
    private String bufferMode;
    private String sendZcMin;
    private String stageReadsMax;
    private boolean batchIo;
    private boolean recovery;
    private boolean autoResize;
    private final TlsFlags tls = new TlsFlags();
    private String structuredReplies;
    private boolean inDaemon;
    private boolean readOnly;
    private String name;
    private String deviceId;
    private String connectTimeout;
    private String ioTimeout;
    private String reconnectTimeout;
    private String shutdownWait;
    private String keepaliveIdle;
    private String keepaliveInterval;
    private String keepaliveCount;
    private String tcpUserTimeout;

    AttachCommand() {
        spec.usageMessage().sortOptions(false);
        spec.addPositional(parameter("0", String.class, v -> uri = v).paramLabel("URI")
                .description("NBD URI: nbd://HOST[:PORT]/EXPORT (port 10809 by default), "
                        + "nbd+unix:///EXPORT?socket=PATH, or nbd+vsock://CID[:PORT]/EXPORT (AF_VSOCK; a "
                        + "VM's host is CID 2).").build());
        spec.addOption(option("--queues", String.class, v -> queues = v).paramLabel("N|auto").defaultValue("auto")
                .description("ublk queues, each with its own NBD connection and event loop (1-64). More than one only "
                        + "if the server advertises CAN_MULTI_CONN. auto: one per CPU up to 4. Default: "
                        + "${DEFAULT-VALUE}.").build());
        spec.addOption(option("--depth", int.class, v -> depth = v).paramLabel("D").defaultValue("128")
                .description("Requests in flight per queue (1-4096). Default: ${DEFAULT-VALUE}.").build());
        spec.addOption(option("--zero-copy", String.class, v -> zeroCopy = v)
                .paramLabel("auto|on|off").defaultValue("auto")
                .description("auto: zero copy when the kernel allows it (Linux 7.2+), else user copy, else copy. "
                        + "on: fail unless zero copy is possible (never for a user other than root). off: never. "
                        + "Default: ${DEFAULT-VALUE}.").build());
        spec.addOption(option("--buffer-mode", String.class, v -> bufferMode = v).paramLabel("zero-copy|user-copy|copy")
                .description("Use exactly this buffer mode instead of --zero-copy's choice (benchmarks, "
                        + "troubleshooting); fails if the kernel cannot do it.").build());
        spec.addOption(option("--send-zc-min", String.class, v -> sendZcMin = v).paramLabel("SIZE").defaultValue("64k")
                .description("Zero-copy mode: write payloads of at least SIZE go out with io_uring SEND_ZC straight "
                        + "from the request's pages; smaller ones, and all of them to a server on this host "
                        + "(the kernel copies zero-copy pages delivered locally), with SEND from the same "
                        + "pages, the kernel copying them. Java touches no data either way. 0: SEND_ZC for "
                        + "every payload. 4096, 64k, 1m. Default: ${DEFAULT-VALUE}.").build());
        spec.addOption(option("--stage-reads-max", String.class, v -> stageReadsMax = v)
                .paramLabel("SIZE").defaultValue("16k")
                .description("READs up to SIZE may be received together with the other replies that have arrived and "
                        + "then copied into place (zero-copy mode: by the kernel through ublk user copy; "
                        + "Java touches no data), saving a receive and an event-loop trip per small reply. "
                        + "Larger READs are received straight into the request's pages. 0 turns it off. "
                        + "Default: ${DEFAULT-VALUE}.").build());
        spec.addOption(option("--batch-io", boolean.class, v -> batchIo = v)
                .negatable(true).defaultValue("true").fallbackValue("true")
                .description("Let the kernel hand over and take back many requests per ublk command (UBLK_F_BATCH_IO, "
                        + "Linux 7.0+) where it can; --no-batch-io keeps one command per request. Default: "
                        + "on.").build());
        spec.addOption(option("--recovery", boolean.class, v -> recovery = v)
                .negatable(true).defaultValue("true").fallbackValue("true")
                .description("Create the device recoverable: if this process dies (kill -9, out of memory, a crash), "
                        + "the kernel keeps the device and holds its I/O until `nbdgate attach --name NAME` "
                        + "or a daemon with NAME in its config takes it over; nothing fails, mounts stay. "
                        + "--no-recovery: the device goes with the process, its I/O failing. Default: on.").build());
        spec.addOption(option("--auto-resize", boolean.class, v -> autoResize = v)
                .negatable(true).defaultValue("false").fallbackValue("true")
                .description("When a reconnect finds the export larger than the device, grow the device to its size, "
                        + "live, as `nbdgate resize` does (a file system on it then grows with resize2fs or "
                        + "xfs_growfs). A smaller export is never followed. Default: off.").build());
        tls.addTo(spec);
        spec.addOption(option("--structured-replies", String.class, v -> structuredReplies = v)
                .paramLabel("auto|on|off").defaultValue("auto")
                .description("Ask the server for structured replies (and extended headers): holes in READ replies "
                        + "instead of zeroes on the wire, and error messages. They cost the server more work per read "
                        + "reply. auto: only from a server on another host. Default: ${DEFAULT-VALUE}.").build());
        spec.addOption(flag("--daemon", v -> inDaemon = v)
                .description("Attach the device in the nbdgate daemon running here instead of serving it from this "
                        + "process: print its path once live and exit. It stays until 'nbdgate detach' or "
                        + "the daemon stops; a reload leaves it alone (the daemon's file does not name it). "
                        + "After a daemon crash it waits as an orphan: the same command with --name NAME "
                        + "takes it over (list it in the file to have that done by itself). --shutdown-wait "
                        + "is then the daemon's.").build());
        spec.addOption(flag("--read-only", v -> readOnly = v)
                .description("Expose the device read-only even if the export is writable.").build());
        spec.addOption(option("--name", String.class, v -> name = v).paramLabel("NAME")
                .description("Name for logs, 'nbdgate list' and 'nbdgate detach', and the stable path "
                        + "/dev/nbdgate/NAME while attached (default: the export name, or 'nbd'; -2, -3, "
                        + "... appended when another device has it). A device of this name left by a "
                        + "process that died is taken over: same /dev/ublkbN, its held I/O served.").build());
        spec.addOption(option("--device-id", String.class, v -> deviceId = v).paramLabel("N|auto").defaultValue("auto")
                .description("ublk device number N of /dev/ublkbN, or auto to let the kernel choose. Default: "
                        + "${DEFAULT-VALUE}.").build());
        spec.addOption(option("--connect-timeout", String.class, v -> connectTimeout = v)
                .paramLabel("DURATION").defaultValue("10s")
                .description("Limit for connecting plus the NBD handshake (500ms, 10s, 2m); a take-over of a "
                        + "crashed process's device keeps trying for this long. Default: ${DEFAULT-VALUE}.").build());
        spec.addOption(option("--io-timeout", String.class, v -> ioTimeout = v)
                .paramLabel("DURATION").defaultValue("30s")
                .description("A request without a reply for this long ends its connection; a new connection carries it "
                        + "(nothing fails until --reconnect-timeout). Default: ${DEFAULT-VALUE}.").build());
        spec.addOption(option("--reconnect-timeout", String.class, v -> reconnectTimeout = v)
                .paramLabel("DURATION|never").defaultValue("5m")
                .description("How long requests wait while the server cannot be reached (restart, network outage). "
                        + "Past it, they and new ones fail with EIO, but reconnecting goes on and the device serves "
                        + "again once the server is back. never: wait forever. Default: ${DEFAULT-VALUE}.").build());
        spec.addOption(option("--shutdown-wait", String.class, v -> shutdownWait = v)
                .paramLabel("DURATION").defaultValue("30s")
                .description("On SIGINT/SIGTERM, how long a device still in use (mounted, held open) keeps serving "
                        + "while its users finish; then file systems are synced and it is removed anyway, its users "
                        + "getting EIO. Default: ${DEFAULT-VALUE}.").build());
        spec.addOption(option("--keepalive-idle", String.class, v -> keepaliveIdle = v)
                .paramLabel("DURATION").defaultValue("10s")
                .description("TCP keepalive: idle time before the first probe, so a dead link is noticed while no "
                        + "request is out. Default: ${DEFAULT-VALUE}.").build());
        spec.addOption(option("--keepalive-interval", String.class, v -> keepaliveInterval = v)
                .paramLabel("DURATION").defaultValue("5s")
                .description("TCP keepalive: time between probes. Default: ${DEFAULT-VALUE}.").build());
        spec.addOption(option("--keepalive-count", String.class, v -> keepaliveCount = v)
                .paramLabel("N").defaultValue("3")
                .description("TCP keepalive: unanswered probes before the link is given up. Default: "
                        + "${DEFAULT-VALUE}.").build());
        spec.addOption(option("--tcp-user-timeout", String.class, v -> tcpUserTimeout = v).paramLabel("DURATION")
                .description("TCP_USER_TIMEOUT: sent data unacknowledged this long ends the link. Default: the I/O "
                        + "timeout.").build());
    }

    @Override
    public Integer call() {
        DeviceConfig config;
        try {
            config = toConfig();
        } catch (ConfigException e) {
            System.err.println("nbdgate attach: " + e.getMessage().replaceFirst("^devices\\[0]\\.", "--")
                    .replace("--timeouts.connect", "--connect-timeout").replace("--timeouts.io", "--io-timeout")
                    .replace("--timeouts.reconnect", "--reconnect-timeout")
                    .replace("--keepalive.user-timeout", "--tcp-user-timeout").replace("--keepalive.", "--keepalive-"));
            return 2;
        }
        DeviceOptions options;
        try {
            options = DeviceOptions.from(config);
            if (name == null) {
                // Two attaches of unnamed exports must not collide on the default name.
                options = options.withName(DeviceRecords.standard().unusedName(options.name(), NbdDevice.describe(options)));
            }
            if (bufferMode != null) {
                options = options.withMode(java.util.Arrays.stream(BufferMode.values())
                        .filter(m -> m.label().equals(bufferMode)).findFirst()
                        .orElseThrow(() -> new NbdConnectionException("--buffer-mode: must be zero-copy, user-copy "
                                + "or copy, got '" + bufferMode + "'")));
            }
        } catch (NbdConnectionException e) {
            System.err.println("nbdgate attach: " + e.getMessage());
            return 2;
        }
        if (inDaemon) {
            return attachInDaemon(options.name());
        }
        Duration wait;
        try {
            wait = DaemonConfig.shutdownWait(new JsonObject().put("shutdown",
                    new JsonObject().put("wait-for-users", shutdownWait)));
        } catch (ConfigException e) {
            System.err.println("nbdgate attach: --shutdown-wait: " + e.getMessage().replaceFirst("^[^:]*: ", ""));
            return 2;
        }
        Vertx vertx = QuietUringTransport.vertx(new VertxOptions());
        NbdDevice device;
        try {
            ServingProcess.guardMemory(vertx, MemorySettings.DEFAULT);
            device = NbdDevice.attach(options, EventLoops.of(vertx));
        } catch (NbdConnectionException | RuntimeException e) {
            System.err.println("nbdgate attach: " + e.getMessage());
            vertx.close();
            return 1;
        }
        ServingProcess serving = new ServingProcess(vertx, true, wait);
        serving.serve(device);
        serving.start(null);
        System.out.println(device.blockDevice());
        System.out.flush();
        return serving.awaitAndCleanUp();
    }

    DeviceConfig toConfig() throws ConfigException {
        return DaemonConfig.from(new JsonObject().put("devices", new JsonArray().add(new JsonObject(deviceJson(null)))))
                .devices().getFirst();
    }

    /**
     * The flags as one device of the YAML, in JSON ({@code name} if not null, else --name or the default name).
     * Text, not a JsonObject: picocli reflects on this class's methods, and --help must not load Vert.x.
     */
    private String deviceJson(String chosenName) {
        JsonObject d = new JsonObject().put("name", chosenName != null ? chosenName : name != null ? name : defaultName())
                .put("uri", uri)
                .put("queues", number(queues)).put("depth", depth).put("zero-copy", zeroCopy)
                .put("read-only", readOnly).put("device-id", number(deviceId))
                .put("timeouts", new JsonObject().put("connect", connectTimeout).put("io", ioTimeout)
                        .put("reconnect", reconnectTimeout))
                .put("keepalive", new JsonObject().put("idle", keepaliveIdle).put("interval", keepaliveInterval)
                        .put("count", number(keepaliveCount)))
                .put("send-zc-min", number(sendZcMin)).put("stage-reads-max", number(stageReadsMax))
                .put("batch-io", batchIo).put("structured-replies", structuredReplies).put("recovery", recovery)
                .put("auto-resize", autoResize);
        if (tcpUserTimeout != null) {
            d.getJsonObject("keepalive").put("user-timeout", tcpUserTimeout);
        }
        if (tls.certificates != null) {
            d.put("tls-certificates", tls.certificates.toAbsolutePath().toString()); // a daemon has another cwd
        }
        if (tls.pskFile != null) {
            d.put("tls-psk-file", tls.pskFile.toAbsolutePath().toString());
        }
        if (tls.username != null) {
            d.put("tls-username", tls.username);
        }
        if (tls.hostname != null) {
            d.put("tls-hostname", tls.hostname);
        }
        if (tls.noVerifyPeer) {
            d.put("tls-verify-peer", false);
        }
        return d.encode();
    }

    /** --daemon: the running daemon attaches the device; this process prints its path and exits. */
    private int attachInDaemon(String chosenName) {
        if (bufferMode != null) {
            System.err.println("nbdgate attach: --buffer-mode is for tests and benchmarks; a daemon picks the mode "
                    + "itself (--zero-copy sets its policy)");
            return 2;
        }
        try {
            System.out.println(ControlClient.attach(deviceJson(chosenName)).get("device"));
            return 0;
        } catch (ControlClient.ControlException e) {
            System.err.println("nbdgate attach: " + e.getMessage());
            return 1;
        }
    }

    // Numbers as numbers, so the schema's range checks apply; anything else as text (e.g. "auto").
    private static Object number(String text) {
        try {
            return Long.parseLong(text);
        } catch (NumberFormatException e) {
            return text;
        }
    }

    private String defaultName() {
        String path = uri.replaceFirst("^[a-z+]+://[^/]*/?", "").replaceFirst("\\?.*$", "");
        String cleaned = path.replaceAll("[^A-Za-z0-9_.-]", "-");
        return cleaned.isEmpty() || !Character.isLetterOrDigit(cleaned.charAt(0)) ? "nbd"
                : cleaned.substring(0, Math.min(32, cleaned.length()));
    }
}
