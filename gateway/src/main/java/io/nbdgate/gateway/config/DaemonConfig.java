package io.nbdgate.gateway.config;

import io.nbdgate.gateway.link.LinkOptions;
import io.nbdgate.gateway.nbd.client.InvalidNbdUriException;
import io.nbdgate.gateway.nbd.client.NbdUri;
import io.nbdgate.gateway.tls.TlsSettings;
import io.vertx.core.json.JsonArray;
import io.vertx.core.json.JsonObject;
import io.nbdgate.gateway.device.DetachMode;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Locale;
import java.util.Set;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * The daemon's configuration ({@code nbdgate daemon --config FILE}); conf/nbdgate.yaml documents every key.
 * Parsing is strict: an unknown key is an error too, because a misspelt {@code read-only} that is
 * silently ignored would expose a disk read-write.
 *
 * @param devices    the devices to attach, in file order
 * @param statusListen host:port of the HTTP status endpoint, or null when off
 * @param shutdownWait how long a device still in use at shutdown keeps serving before it is removed anyway
 * @param reloadInUse what a reload does to a device removed from the file that is still in use
 * @param orphanTimeout how long a device left by a dead process, which no device of this file claims, is kept
 *                  (its I/O held) for a take-over before the daemon deletes it
 * @param memory    how the daemon guards itself against memory pressure
 */
public record DaemonConfig(List<DeviceConfig> devices, String statusListen, Duration shutdownWait,
                           DetachMode reloadInUse, Duration orphanTimeout, MemorySettings memory) {

    public static final Duration DEFAULT_ORPHAN_TIMEOUT = Duration.ofMinutes(10);

    static final String DEFAULT_STATUS_LISTEN = "127.0.0.1:10810";
    /** Inside systemd's TimeoutStopSec=60 of the unit, with time left to stop the devices after it. */
    public static final Duration DEFAULT_SHUTDOWN_WAIT = Duration.ofSeconds(30);
    private static final Set<String> TOP_KEYS = Set.of("devices", "status", "shutdown", "reload", "orphan-timeout",
            "memory");
    private static final Set<String> MEMORY_KEYS = Set.of("oom-score-adj", "lock");
    private static final Set<String> RELOAD_KEYS = Set.of("in-use");
    private static final Set<String> STATUS_KEYS = Set.of("listen");
    private static final Set<String> SHUTDOWN_KEYS = Set.of("wait-for-users");
    private static final Set<String> DEVICE_KEYS = Set.of("name", "uri", "queues", "depth", "zero-copy", "read-only",
            "device-id", "timeouts", "send-zc-min", "stage-reads-max", "batch-io", "structured-replies", "keepalive",
            "recovery", "auto-resize", "tls-certificates", "tls-psk-file", "tls-username", "tls-hostname",
            "tls-verify-peer", "tls-ca-certificate", "tls-client-certificate", "tls-client-key");
    private static final Set<String> TIMEOUT_KEYS = Set.of("connect", "io", "reconnect");
    private static final Set<String> KEEPALIVE_KEYS = Set.of("idle", "interval", "count", "user-timeout");
    private static final Pattern NAME = Pattern.compile("[A-Za-z0-9][A-Za-z0-9_.-]{0,31}");
    private static final Pattern DURATION = Pattern.compile("(\\d+)\\s*(ms|s|m|h)?");
    private static final Pattern SIZE = Pattern.compile("(\\d+)\\s*([kKmM])?");
    private static final Pattern HOST_PORT = Pattern.compile("(.+):(\\d{1,5})");

    public DaemonConfig {
        devices = List.copyOf(devices);
    }

    /** Validates a parsed YAML document; the first problem found is reported with its key. */
    public static DaemonConfig from(JsonObject doc) throws ConfigException {
        if (doc == null || doc.isEmpty()) {
            throw new ConfigException("", "the file is empty; it needs at least a 'devices' list");
        }
        unknownKeys(doc, TOP_KEYS, "");
        String status = DEFAULT_STATUS_LISTEN;
        if (doc.containsKey("status")) {
            JsonObject s = object(doc, "status", "status");
            unknownKeys(s, STATUS_KEYS, "status.");
            if (s.containsKey("listen")) {
                String listen = string(s, "listen", "status.listen");
                if (listen.equals("off")) {
                    status = null;
                } else {
                    Matcher m = HOST_PORT.matcher(listen);
                    if (!m.matches() || Integer.parseInt(m.group(2)) > 65535) {
                        throw new ConfigException("status.listen", "must be HOST:PORT or off, got '" + listen + "'");
                    }
                    status = listen;
                }
            }
        }
        Object raw = doc.getValue("devices");
        if (!(raw instanceof JsonArray list)) {
            throw new ConfigException("devices", raw == null ? "missing; list the devices to attach"
                    : "must be a list of devices");
        }
        if (list.isEmpty()) {
            throw new ConfigException("devices", "is empty; list at least one device");
        }
        List<DeviceConfig> devices = new ArrayList<>();
        Set<String> names = new HashSet<>();
        Set<Integer> ids = new HashSet<>();
        for (int i = 0; i < list.size(); i++) {
            String at = "devices[" + i + "]";
            if (!(list.getValue(i) instanceof JsonObject d)) {
                throw new ConfigException(at, "must be a mapping with at least name and uri");
            }
            DeviceConfig device = device(d, at);
            if (!names.add(device.name())) {
                throw new ConfigException(at + ".name", "'" + device.name() + "' is used by an earlier device");
            }
            if (device.deviceId() >= 0 && !ids.add(device.deviceId())) {
                throw new ConfigException(at + ".device-id", device.deviceId() + " is used by an earlier device");
            }
            devices.add(device);
        }
        Duration orphanTimeout = doc.containsKey("orphan-timeout")
                ? duration(doc.getValue("orphan-timeout"), "orphan-timeout") : DEFAULT_ORPHAN_TIMEOUT;
        return new DaemonConfig(devices, status, shutdownWait(doc), reloadInUse(doc), orphanTimeout, memory(doc));
    }

    private static MemorySettings memory(JsonObject doc) throws ConfigException {
        if (!doc.containsKey("memory")) {
            return MemorySettings.DEFAULT;
        }
        JsonObject m = object(doc, "memory", "memory");
        unknownKeys(m, MEMORY_KEYS, "memory.");
        int adj = m.containsKey("oom-score-adj") ? wholeNumber(m, "oom-score-adj", "memory", -1000, 1000, "")
                : MemorySettings.DEFAULT.oomScoreAdj();
        return new MemorySettings(adj, flag(m, "lock", "memory", MemorySettings.DEFAULT.lock()));
    }

    private static DetachMode reloadInUse(JsonObject doc) throws ConfigException {
        if (!doc.containsKey("reload")) {
            return DetachMode.REFUSE;
        }
        JsonObject r = object(doc, "reload", "reload");
        unknownKeys(r, RELOAD_KEYS, "reload.");
        if (!r.containsKey("in-use")) {
            return DetachMode.REFUSE;
        }
        try {
            return DetachMode.of(String.valueOf(r.getValue("in-use")));
        } catch (IllegalArgumentException e) {
            throw new ConfigException("reload.in-use", "must be refuse, force or deferred, got '"
                    + r.getValue("in-use") + "'");
        }
    }

    /** Also the check of attach's --shutdown-wait. */
    public static Duration shutdownWait(JsonObject doc) throws ConfigException {
        if (!doc.containsKey("shutdown")) {
            return DEFAULT_SHUTDOWN_WAIT;
        }
        JsonObject s = object(doc, "shutdown", "shutdown");
        unknownKeys(s, SHUTDOWN_KEYS, "shutdown.");
        return s.containsKey("wait-for-users") ? duration(s.getValue("wait-for-users"), "shutdown.wait-for-users")
                : DEFAULT_SHUTDOWN_WAIT;
    }

    private static DeviceConfig device(JsonObject d, String at) throws ConfigException {
        unknownKeys(d, DEVICE_KEYS, at + ".");
        String name = required(d, "name", at);
        if (!NAME.matcher(name).matches()) {
            throw new ConfigException(at + ".name",
                    "must be 1-32 letters, digits, '_', '.' or '-', starting with a letter or digit, got '" + name + "'");
        }
        String uri = required(d, "uri", at);
        TlsSettings tls = tlsSettings(d, at);
        try {
            NbdUri.parse(uri).withTls(tls);
        } catch (InvalidNbdUriException e) {
            throw new ConfigException(at + ".uri", e.getMessage());
        }
        int queues = DeviceConfig.AUTO_QUEUES;
        if (d.containsKey("queues") && !"auto".equals(d.getValue("queues"))) {
            queues = wholeNumber(d, "queues", at, 1, DeviceConfig.MAX_QUEUES, " or auto");
        }
        int depth = d.containsKey("depth") ? wholeNumber(d, "depth", at, 1, DeviceConfig.MAX_DEPTH, "")
                : DeviceConfig.DEFAULT_DEPTH;
        ZeroCopy zeroCopy = autoOnOff(d, "zero-copy", at, ZeroCopy.class, ZeroCopy.AUTO);
        boolean readOnly = flag(d, "read-only", at, false);
        int deviceId = -1;
        if (d.containsKey("device-id") && !"auto".equals(d.getValue("device-id"))) {
            deviceId = wholeNumber(d, "device-id", at, 0, (1 << 20) - 1, " or auto");
        }
        Duration connect = DeviceConfig.DEFAULT_CONNECT_TIMEOUT;
        Duration io = DeviceConfig.DEFAULT_IO_TIMEOUT;
        Duration reconnect = DeviceConfig.DEFAULT_RECONNECT_TIMEOUT;
        if (d.containsKey("timeouts")) {
            JsonObject t = object(d, "timeouts", at + ".timeouts");
            unknownKeys(t, TIMEOUT_KEYS, at + ".timeouts.");
            if (t.containsKey("connect")) {
                connect = duration(t.getValue("connect"), at + ".timeouts.connect");
            }
            if (t.containsKey("io")) {
                io = duration(t.getValue("io"), at + ".timeouts.io");
            }
            if (t.containsKey("reconnect")) {
                reconnect = reconnectTimeout(t.getValue("reconnect"), at + ".timeouts.reconnect");
            }
        }
        LinkOptions.Keepalive keepalive = keepalive(d, at, DeviceConfig.defaultKeepalive(io));
        int sendZcMin = DeviceConfig.DEFAULT_SEND_ZC_MIN;
        if (d.containsKey("send-zc-min")) {
            sendZcMin = size(d.getValue("send-zc-min"), at + ".send-zc-min");
        }
        int stageReadsMax = DeviceConfig.DEFAULT_STAGE_READS_MAX;
        if (d.containsKey("stage-reads-max")) {
            stageReadsMax = size(d.getValue("stage-reads-max"), at + ".stage-reads-max");
        }
        boolean batchIo = flag(d, "batch-io", at, true);
        boolean recovery = flag(d, "recovery", at, true);
        boolean autoResize = flag(d, "auto-resize", at, false);
        StructuredReplies structuredReplies = autoOnOff(d, "structured-replies", at, StructuredReplies.class,
                StructuredReplies.AUTO);
        return new DeviceConfig(name, uri, queues, depth, zeroCopy, readOnly, deviceId, connect, io, sendZcMin,
                stageReadsMax, batchIo, structuredReplies, reconnect, keepalive, recovery, autoResize, tls);
    }

    /** The device's tls-* keys: what the URI's parameters of the same names say. */
    private static TlsSettings tlsSettings(JsonObject d, String at) throws ConfigException {
        String certificates = d.containsKey("tls-certificates") ? string(d, "tls-certificates", at + ".tls-certificates")
                : null;
        String psk = d.containsKey("tls-psk-file") ? string(d, "tls-psk-file", at + ".tls-psk-file") : null;
        String user = d.containsKey("tls-username") ? string(d, "tls-username", at + ".tls-username") : null;
        String host = d.containsKey("tls-hostname") ? string(d, "tls-hostname", at + ".tls-hostname") : null;
        Boolean verify = d.containsKey("tls-verify-peer") ? flag(d, "tls-verify-peer", at, true) : null;
        return new TlsSettings(null, host, verify, certificates == null ? null : java.nio.file.Path.of(certificates),
                psk == null ? null : java.nio.file.Path.of(psk), user, path(d, "tls-ca-certificate", at),
                path(d, "tls-client-certificate", at), path(d, "tls-client-key", at));
    }

    private static java.nio.file.Path path(JsonObject d, String key, String at) throws ConfigException {
        return d.containsKey(key) ? java.nio.file.Path.of(string(d, key, at + "." + key)) : null;
    }

    /** A duration, or {@code never}: null. */
    private static Duration reconnectTimeout(Object value, String key) throws ConfigException {
        if ("never".equals(value)) {
            return null;
        }
        try {
            return duration(value, key);
        } catch (ConfigException e) {
            throw new ConfigException(key, "must be a duration like 30s, 5m or 1h, or never, got '" + value + "'");
        }
    }

    private static LinkOptions.Keepalive keepalive(JsonObject d, String at, LinkOptions.Keepalive k)
            throws ConfigException {
        if (!d.containsKey("keepalive")) {
            return k;
        }
        JsonObject o = object(d, "keepalive", at + ".keepalive");
        unknownKeys(o, KEEPALIVE_KEYS, at + ".keepalive.");
        Duration idle = o.containsKey("idle") ? duration(o.getValue("idle"), at + ".keepalive.idle") : k.idle();
        Duration interval = o.containsKey("interval") ? duration(o.getValue("interval"), at + ".keepalive.interval")
                : k.interval();
        int count = o.containsKey("count") ? wholeNumber(o, "count", at + ".keepalive", 1, 127, "") : k.count();
        Duration user = o.containsKey("user-timeout")
                ? duration(o.getValue("user-timeout"), at + ".keepalive.user-timeout") : k.userTimeout();
        return new LinkOptions.Keepalive(idle, interval, count, user);
    }

    /** A true/false key of a device; {@code absent} when it is not there. */
    private static boolean flag(JsonObject d, String key, String at, boolean absent) throws ConfigException {
        if (!d.containsKey(key)) {
            return absent;
        }
        if (!(d.getValue(key) instanceof Boolean b)) {
            throw new ConfigException(at + "." + key, "must be true or false, got '" + d.getValue(key) + "'");
        }
        return b;
    }

    /** An auto / on / off setting ({@code true} and {@code false} name on and off), {@code absent} if not given. */
    private static <E extends Enum<E>> E autoOnOff(JsonObject d, String key, String at, Class<E> type, E absent)
            throws ConfigException {
        if (!d.containsKey(key)) {
            return absent;
        }
        Object v = d.getValue(key);
        String constant = switch (String.valueOf(v).toLowerCase(Locale.ROOT)) {
            case "auto" -> "AUTO";
            case "on", "true" -> "ON";
            case "off", "false" -> "OFF";
            default -> throw new ConfigException(at + "." + key, "must be auto, on or off, got '" + v + "'");
        };
        return Enum.valueOf(type, constant);
    }

    /** Parses {@code 500ms}, {@code 10s}, {@code 2m}, {@code 1h}, or a bare number of seconds; must be positive. */
    static Duration duration(Object value, String key) throws ConfigException {
        Matcher m = DURATION.matcher(String.valueOf(value).trim());
        if (!(value instanceof String || value instanceof Number) || !m.matches()) {
            throw new ConfigException(key, "must be a duration like 500ms, 10s, 2m or 1h, got '" + value + "'");
        }
        long n = Long.parseLong(m.group(1));
        String unit = m.group(2) == null ? "s" : m.group(2);
        Duration d = switch (unit) {
            case "ms" -> Duration.ofMillis(n);
            case "m" -> Duration.ofMinutes(n);
            case "h" -> Duration.ofHours(n);
            default -> Duration.ofSeconds(n);
        };
        if (d.isZero()) {
            throw new ConfigException(key, "must be longer than zero");
        }
        return d;
    }

    /** Parses a byte count: {@code 65536}, {@code 64k}, {@code 1m}; at most 1 GiB. */
    static int size(Object value, String key) throws ConfigException {
        Matcher m = SIZE.matcher(String.valueOf(value).trim());
        if (!(value instanceof String || value instanceof Number) || !m.matches() || m.group(1).length() > 10) {
            throw new ConfigException(key, "must be a size like 4096, 64k or 1m, got '" + value + "'");
        }
        long n = Long.parseLong(m.group(1));
        if (m.group(2) != null) {
            n <<= Character.toLowerCase(m.group(2).charAt(0)) == 'k' ? 10 : 20;
        }
        if (n > 1L << 30) {
            throw new ConfigException(key, "must be at most 1g, got '" + value + "'");
        }
        return (int) n;
    }

    private static void unknownKeys(JsonObject o, Set<String> known, String prefix) throws ConfigException {
        for (String k : o.fieldNames()) {
            if (!known.contains(k)) {
                throw new ConfigException(prefix + k, "unknown key (known here: " + String.join(", ", known.stream().sorted().toList()) + ")");
            }
        }
    }

    private static String required(JsonObject o, String key, String at) throws ConfigException {
        if (!o.containsKey(key)) {
            throw new ConfigException(at + "." + key, "missing");
        }
        return string(o, key, at + "." + key);
    }

    private static String string(JsonObject o, String key, String path) throws ConfigException {
        Object v = o.getValue(key);
        if (!(v instanceof String s) || s.isBlank()) {
            throw new ConfigException(path, "must be a non-empty string, got '" + v + "'");
        }
        return s;
    }

    private static JsonObject object(JsonObject o, String key, String path) throws ConfigException {
        if (!(o.getValue(key) instanceof JsonObject j)) {
            throw new ConfigException(path, "must be a mapping");
        }
        return j;
    }

    private static int wholeNumber(JsonObject o, String key, String at, int min, int max, String alternative)
            throws ConfigException {
        Object v = o.getValue(key);
        if (v instanceof Number n && n.doubleValue() == n.longValue() && n.longValue() >= min && n.longValue() <= max) {
            return n.intValue();
        }
        throw new ConfigException(at + "." + key, "must be a whole number from " + min + " to " + max + alternative
                + ", got '" + v + "'");
    }
}
