package io.nbdgate.gateway.control;

import com.fasterxml.jackson.core.JsonFactory;
import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonToken;
import io.nbdgate.gateway.config.RunDir;
import io.nbdgate.gateway.net.BlockingSocket;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.net.URLEncoder;
import java.net.UnixDomainSocketAddress;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;

/**
 * Talks to the control sockets of the nbdgate processes on this machine ({@link ControlServer}'s small HTTP API),
 * from the calling thread: {@code nbdgate list} and {@code detach} ask one question each and start no event loop.
 * One HTTP/1.1 exchange per connection ({@code Connection: close}), JSON read with Jackson's streaming parser.
 */
public final class ControlClient {
    // Detaching waits for the device's queues to stop; listing answers at once.
    private static final long TIMEOUT_MS = 60_000;
    private static final JsonFactory JSON = new JsonFactory();

    /** A control request that got an answer other than success. */
    public static final class ControlException extends Exception {
        public ControlException(String message) {
            super(message);
        }
    }

    /** One device as GET /devices describes it: field name to value, in the server's order. */
    public record Device(Map<String, String> fields) {
        public String get(String key) {
            return fields.getOrDefault(key, "");
        }
    }

    private record Response(int status, byte[] body) {
    }

    private ControlClient() {
    }

    /** Where every serving nbdgate process puts its socket: {@link RunDir}. */
    public static Path runDir() {
        return RunDir.path();
    }

    /**
     * Every device every live nbdgate process serves. Sockets nobody listens on (left by a killed process) are
     * skipped; a socket that refuses us (not root) fails the whole answer, which would otherwise look empty.
     */
    public static List<Device> devices() throws ControlException {
        List<Device> out = new ArrayList<>();
        for (Answer a : askEveryProcess("GET", "/devices")) {
            if (a.status() != 200) {
                throw new ControlException("control socket " + a.socket() + ": " + error(a.body(), "status "
                        + a.status()));
            }
            out.addAll(a.body());
        }
        return out;
    }

    private record Answer(Path socket, int status, List<Device> body) {
    }

    /** One request to every live nbdgate process; sockets nobody listens on (a killed process's) are skipped. */
    private static List<Answer> askEveryProcess(String method, String target) throws ControlException {
        List<Answer> out = new ArrayList<>();
        for (Path s : sockets()) {
            Response r;
            try {
                r = call(s, method, target);
            } catch (IOException e) {
                if (stale(e)) {
                    continue;
                }
                throw new ControlException("control socket " + s + ": " + e.getMessage());
            }
            out.add(new Answer(s, r.status(), parse(s, r.body())));
        }
        return out;
    }

    /** Nobody listens there: the process is gone and left its socket file. */
    private static boolean stale(IOException e) {
        String m = String.valueOf(e.getMessage());
        return e instanceof java.net.ConnectException || m.contains("Connection refused") || m.contains("No such file")
                || m.contains("Protocol wrong type");
    }

    private static String error(List<Device> answer, String otherwise) {
        return answer.size() == 1 && !answer.getFirst().get("error").isEmpty() ? answer.getFirst().get("error") : otherwise;
    }

    private static List<Device> parse(Path socket, byte[] body) throws ControlException {
        try {
            return parseObjects(body);
        } catch (IOException e) {
            throw new ControlException("control socket " + socket + ": unreadable answer: " + e.getMessage());
        }
    }

    /** Detaches the device named {@code which}, refusing when it is in use. */
    public static Device detach(String which) throws ControlException {
        return detach(which, "refuse");
    }

    /**
     * Detaches the device named {@code which} (a name or /dev/ublkbN), wherever it is served; {@code mode} says
     * what happens when it is in use: refuse, force or deferred. The answer has "detached", or "pending" (a
     * deferred detach waits for the last user); a refusal is a ControlException naming the holders.
     */
    public static Device detach(String which, String mode) throws ControlException {
        return askServing(which, "/detach", "&mode=" + URLEncoder.encode(mode, StandardCharsets.UTF_8), "detaching");
    }

    /**
     * Gives the device named {@code which} its export's current size (the server is asked again); a smaller export
     * only with {@code shrink}. The answer's "line" says what happened; a refusal is a ControlException.
     */
    public static Device resize(String which, boolean shrink) throws ControlException {
        return askServing(which, "/resize", shrink ? "&shrink=true" : "", "resizing");
    }

    /** POST {@code path}?device=WHICH{@code more} to the process serving {@code which}; 200 or 202 is an answer. */
    private static Device askServing(String which, String path, String more, String doing) throws ControlException {
        for (Device d : devices()) {
            if (which.equals(d.get("name")) || which.equals(d.get("device"))) {
                Path s = runDir().resolve(d.get("pid") + ".sock");
                Response r;
                try {
                    r = call(s, "POST", path + "?device=" + URLEncoder.encode(which, StandardCharsets.UTF_8) + more);
                } catch (IOException e) {
                    throw new ControlException("the nbdgate process serving " + which + " did not answer on " + s
                            + ": " + e.getMessage());
                }
                List<Device> answer = parse(s, r.body());
                if (r.status() != 200 && r.status() != 202 || answer.size() != 1) {
                    throw new ControlException(error(answer, doing + " " + which + " failed: status " + r.status()));
                }
                return answer.getFirst();
            }
        }
        throw new ControlException("no nbdgate process serves a device named '" + which + "' (see nbdgate list)");
    }

    /**
     * Asks every nbdgate daemon here to leave its devices to the next daemon and exit; returns their lines. A
     * daemon that refuses (a device would be lost) fails the call with its reason; none left to ask is an error.
     */
    public static List<String> handover() throws ControlException {
        List<String> lines = new ArrayList<>();
        boolean asked = false;
        for (Answer a : askEveryProcess("POST", "/handover")) {
            if (a.status() == 409) {
                continue; // an attach process
            }
            if (a.status() != 200) {
                throw new ControlException(error(a.body(), "control socket " + a.socket() + ": status " + a.status()));
            }
            asked = true;
            a.body().forEach(d -> lines.add(d.get("line")));
        }
        if (!asked) {
            throw new ControlException("no nbdgate daemon runs here (attach processes are not handed over)");
        }
        return lines;
    }

    /**
     * Asks every nbdgate daemon here to read its config file again; returns their lines. Attach processes (no file)
     * are skipped; none left to ask is an error.
     */
    public static List<String> reload() throws ControlException {
        List<String> lines = new ArrayList<>();
        boolean asked = false;
        for (Answer a : askEveryProcess("POST", "/reload")) {
            if (a.status() == 409) {
                continue;
            }
            if (a.status() != 200) {
                throw new ControlException("control socket " + a.socket() + ": " + error(a.body(), "status "
                        + a.status()));
            }
            asked = true;
            a.body().forEach(d -> lines.add(d.get("line")));
        }
        if (!asked) {
            throw new ControlException("no nbdgate daemon with a config file runs here (see nbdgate list)");
        }
        return lines;
    }

    /**
     * Attaches one more device in the nbdgate daemon here: {@code deviceJson} holds its settings with the YAML's
     * keys. Returns the answer ("name", "device"); no daemon, or one that could not attach it, is a ControlException.
     */
    public static Device attach(String deviceJson) throws ControlException {
        byte[] body = deviceJson.getBytes(StandardCharsets.UTF_8);
        for (Path s : sockets()) {
            Response r;
            try {
                r = call(s, "POST", "/attach", body);
            } catch (IOException e) {
                if (stale(e)) {
                    continue;
                }
                throw new ControlException("control socket " + s + ": " + e.getMessage());
            }
            if (r.status() == 409) {
                continue; // an attach process
            }
            List<Device> answer = parse(s, r.body());
            if (r.status() != 200 || answer.size() != 1) {
                throw new ControlException(error(answer, "control socket " + s + ": status " + r.status()));
            }
            return answer.getFirst();
        }
        throw new ControlException("no nbdgate daemon runs here to attach to (start one: nbdgate daemon --config FILE)");
    }

    private static List<Path> sockets() {
        try (Stream<Path> s = Files.list(runDir())) {
            return s.filter(p -> p.getFileName().toString().endsWith(".sock")).sorted().toList();
        } catch (IOException e) {
            return List.of();
        }
    }

    private static Response call(Path socket, String method, String target) throws IOException {
        return call(socket, method, target, new byte[0]);
    }

    private static Response call(Path socket, String method, String target, byte[] body) throws IOException {
        try (BlockingSocket s = BlockingSocket.connect(UnixDomainSocketAddress.of(socket), TIMEOUT_MS)) {
            s.writeFully(StandardCharsets.US_ASCII.encode(method + " " + target + " HTTP/1.1\r\nHost: localhost\r\n"
                    + "Content-Type: application/json\r\nContent-Length: " + body.length
                    + "\r\nConnection: close\r\n\r\n"));
            s.writeFully(ByteBuffer.wrap(body));
            ByteArrayOutputStream all = new ByteArrayOutputStream();
            ByteBuffer b = ByteBuffer.allocate(8192);
            while (s.read(b.clear()) >= 0) {
                all.write(b.array(), 0, b.position());
            }
            return parseResponse(all.toByteArray());
        }
    }

    /** The status and body of an HTTP/1.1 response read to the end of the connection. */
    private static Response parseResponse(byte[] raw) throws IOException {
        String text = new String(raw, StandardCharsets.ISO_8859_1);
        int headEnd = text.indexOf("\r\n\r\n");
        String[] statusLine = text.substring(0, Math.max(0, text.indexOf("\r\n"))).split(" ", 3);
        if (headEnd < 0 || statusLine.length < 2 || !statusLine[0].startsWith("HTTP/1.")) {
            throw new IOException("not an HTTP response");
        }
        if (text.substring(0, headEnd).toLowerCase(java.util.Locale.ROOT).contains("transfer-encoding: chunked")) {
            throw new IOException("chunked responses are not expected from the control socket");
        }
        try {
            return new Response(Integer.parseInt(statusLine[1]), java.util.Arrays.copyOfRange(raw, headEnd + 4, raw.length));
        } catch (NumberFormatException e) {
            throw new IOException("bad HTTP status line: " + statusLine[1]);
        }
    }

    /** One JSON object, or an array of them, with scalar values as text; an empty body is no object. */
    static List<Device> parseObjects(byte[] json) throws IOException {
        List<Device> out = new ArrayList<>();
        if (json.length == 0) {
            return out;
        }
        try (JsonParser p = JSON.createParser(json)) {
            JsonToken t = p.nextToken();
            boolean array = t == JsonToken.START_ARRAY;
            if (array) {
                t = p.nextToken();
            }
            while (t == JsonToken.START_OBJECT) {
                Map<String, String> fields = new LinkedHashMap<>();
                while (p.nextToken() == JsonToken.FIELD_NAME) {
                    String name = p.currentName();
                    p.nextToken();
                    fields.put(name, p.getValueAsString());
                    p.skipChildren(); // none expected; a nested value must not derail the object
                }
                out.add(new Device(fields));
                t = array ? p.nextToken() : null;
            }
        }
        return out;
    }
}
