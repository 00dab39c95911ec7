package io.nbdgate.gateway.config;

import io.vertx.core.json.JsonArray;
import io.vertx.core.json.JsonObject;
import java.io.IOException;
import java.net.URLEncoder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * nbd-client's {@code /etc/nbdtab} (nbdtab(5)) as a daemon configuration: {@code nbdgate daemon --nbdtab FILE}.
 * One device per line, {@code DEVICE HOST EXPORT [OPTION,OPTION...]}; the first field (nbd0, or /dev/nbd0)
 * becomes the device's name, so it is {@code /dev/nbdgate/nbd0}. Every option nbd-client knows is either
 * mapped or refused with the line and the option; nothing is silently dropped. Everything nbdtab cannot say
 * takes the YAML file's default.
 */
public final class NbdTab {
    /** nbd-client's TLS files and host name, as the device's YAML keys; any of them means TLS, as in nbd-client. */
    private static final Map<String, String> TLS_KEYS = Map.of("certfile", "tls-client-certificate",
            "keyfile", "tls-client-key", "cacertfile", "tls-ca-certificate", "tlshostname", "tls-hostname");
    /** nbd-client options nbdgate has no equivalent of, with the reason given to the user. */
    private static final List<String[]> REFUSED = List.of(
            new String[] {"sdp", "the Sockets Direct Protocol is not supported"},
            new String[] {"no_optgo", "nbdgate always negotiates with NBD_OPT_GO"},
            new String[] {"preinit", "nbdgate does the NBD handshake itself"},
            new String[] {"dead-timeout", "not supported; timeout= sets how long a request may wait"},
            new String[] {"priority", "a GnuTLS priority string; nbdgate offers TLS 1.3 and 1.2 with AES-GCM and"
                    + " ChaCha20-Poly1305, nothing else"});
    private static final Pattern OPTION = Pattern.compile("([A-Za-z_][A-Za-z0-9_-]*)(?:=(.*))?");

    /** What a file turned into, and the lines worth telling the user about (options that change nothing). */
    public record Result(DaemonConfig config, List<String> notes) {
    }

    private static JsonObject timeouts(JsonObject device) {
        if (!(device.getValue("timeouts") instanceof JsonObject t)) {
            JsonObject created = new JsonObject();
            device.put("timeouts", created);
            return created;
        }
        return t;
    }

    private NbdTab() {
    }

    public static Result load(Path file) throws ConfigException {
        if (!Files.isRegularFile(file)) {
            throw new ConfigException("", "no such file: " + file);
        }
        try {
            return parse(Files.readString(file, StandardCharsets.UTF_8));
        } catch (IOException e) {
            throw new ConfigException("", "cannot read " + file + ": " + e.getMessage());
        }
    }

    /** Parses the text of an nbdtab file; every problem names its line (and option). */
    public static Result parse(String text) throws ConfigException {
        JsonArray devices = new JsonArray();
        List<Integer> lineOf = new ArrayList<>();
        List<String> notes = new ArrayList<>();
        String[] lines = text.split("\n", -1);
        for (int i = 0; i < lines.length; i++) {
            int hash = lines[i].indexOf('#');
            String line = (hash >= 0 ? lines[i].substring(0, hash) : lines[i]).strip();
            if (line.isEmpty()) {
                continue;
            }
            int number = i + 1;
            devices.add(device(line.split("[ \t]+"), number, notes));
            lineOf.add(number);
        }
        if (devices.isEmpty()) {
            throw new ConfigException("", "no device lines (DEVICE HOST EXPORT [OPTIONS]) in the file");
        }
        try {
            DaemonConfig config = DaemonConfig.from(new JsonObject().put("devices", devices));
            return new Result(config, List.copyOf(notes));
        } catch (ConfigException e) {
            throw atLine(e, lineOf);
        }
    }

    private static JsonObject device(String[] fields, int line, List<String> notes) throws ConfigException {
        String at = "line " + line;
        if (fields.length < 3 || fields.length > 4) {
            throw new ConfigException(at, "expected DEVICE HOST EXPORT [OPTION,...], got " + fields.length
                    + " field(s)");
        }
        String name = fields[0].startsWith("/dev/") ? fields[0].substring(5) : fields[0];
        String host = fields[1];
        String export = fields[2];
        JsonObject d = new JsonObject().put("name", name);
        Integer port = null;
        boolean unix = false;
        boolean tls = false;
        for (String option : fields.length == 4 ? fields[3].split(",", -1) : new String[0]) {
            Matcher m = OPTION.matcher(option);
            if (!m.matches()) {
                throw new ConfigException(at, "malformed option '" + option + "' (options are NAME or NAME=VALUE, "
                        + "separated by commas without spaces)");
            }
            String key = m.group(1);
            String value = m.group(2);
            if (key.startsWith("_")) {
                continue; // nbdtab(5) reserves a leading underscore for local use; nbd-client ignores them too
            }
            if (TLS_KEYS.containsKey(key)) {
                d.put(TLS_KEYS.get(key), text(key, value, at));
                tls = true;
                continue;
            }
            for (String[] refused : REFUSED) {
                if (refused[0].equals(key)) {
                    throw new ConfigException(at, "option '" + key + "': " + refused[1]);
                }
            }
            switch (key) {
                case "port" -> port = number(key, value, at, 1, 65535);
                case "conns" -> d.put("queues", number(key, value, at, 1, DeviceConfig.MAX_QUEUES));
                case "timeout" -> timeouts(d).put("io", number(key, value, at, 1, 86400) + "s");
                // nbd-client -persist reconnects forever; nbdgate always reconnects, so persist lifts the time limit.
                case "persist" -> {
                    if (flag(key, value, at)) {
                        timeouts(d).put("reconnect", "never");
                    }
                }
                case "bs" -> {
                    int bs = number(key, value, at, 512, 4096);
                    if (Integer.bitCount(bs) != 1) {
                        throw new ConfigException(at, "option 'bs': must be a power of two from 512 to 4096, got " + bs);
                    }
                    notes.add(at + ": bs=" + bs + " is not used: nbdgate takes the block size the server advertises");
                }
                case "unix" -> unix = flag(key, value, at);
                case "tls" -> tls = flag(key, value, at);
                // nbd-client -swap locks its memory; the daemon does that for every device (memory.lock, which
                // nbdtab cannot turn off).
                case "swap" -> {
                    flag(key, value, at);
                    notes.add(at + ": swap: the daemon locks its memory and writes pages out as an IO flusher"
                            + " (memory.lock, on by default), which swap on the device needs");
                }
                case "readonly", "ro" -> d.put("read-only", flag(key, value, at));
                case "name" -> d.put("name", text(key, value, at));
                default -> throw new ConfigException(at, "unknown option '" + key + "' (known: bs, cacertfile, certfile,"
                        + " conns, keyfile, name, persist, port, readonly, ro, swap, timeout, tls, tlshostname, unix)");
            }
        }
        if (unix && port != null) {
            throw new ConfigException(at, "option 'port' does not go with 'unix' (HOST is then a socket path)");
        }
        String exportPart = URLEncoder.encode(export, StandardCharsets.UTF_8).replace("+", "%20");
        String scheme = tls ? "nbds" : "nbd";
        if (unix) {
            d.put("uri", scheme + "+unix:///" + exportPart + "?socket=" + URLEncoder.encode(host, StandardCharsets.UTF_8));
        } else {
            String h = host.contains(":") && !host.startsWith("[") ? "[" + host + "]" : host;
            d.put("uri", scheme + "://" + h + ":" + (port == null ? 10809 : port) + "/" + exportPart);
        }
        return d;
    }

    private static int number(String key, String value, String at, int min, int max) throws ConfigException {
        if (value == null || !value.matches("\\d{1,9}") || Integer.parseInt(value) < min
                || Integer.parseInt(value) > max) {
            throw new ConfigException(at, "option '" + key + "': must be a whole number from " + min + " to " + max
                    + ", got " + (value == null ? "no value" : "'" + value + "'"));
        }
        return Integer.parseInt(value);
    }

    private static boolean flag(String key, String value, String at) throws ConfigException {
        if (value != null) {
            throw new ConfigException(at, "option '" + key + "' takes no value, got '" + value + "'");
        }
        return true;
    }

    private static String text(String key, String value, String at) throws ConfigException {
        if (value == null || value.isEmpty()) {
            throw new ConfigException(at, "option '" + key + "' needs a value");
        }
        return value;
    }

    /** A schema error about devices[i].KEY, told as the nbdtab line it came from. */
    private static ConfigException atLine(ConfigException e, List<Integer> lineOf) {
        Matcher m = Pattern.compile("devices\\[(\\d+)]\\.?(.*)").matcher(e.key());
        if (!m.matches()) {
            return e;
        }
        String field = switch (m.group(2)) {
            case "name" -> "device name";
            case "uri" -> "host or export";
            case "queues" -> "option 'conns'";
            case "timeouts.io" -> "option 'timeout'";
            default -> m.group(2);
        };
        String problem = e.getMessage().substring(e.key().length() + 2);
        return new ConfigException("line " + lineOf.get(Integer.parseInt(m.group(1))), field + ": " + problem);
    }
}
