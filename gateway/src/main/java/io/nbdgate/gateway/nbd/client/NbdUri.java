package io.nbdgate.gateway.nbd.client;

import io.nbdgate.gateway.tls.TlsSettings;
import java.io.ByteArrayOutputStream;
import java.net.URI;
import java.net.URISyntaxException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Set;

/**
 * An NBD URI (doc/uri.md of NetworkBlockDevice/nbd): {@code nbd://host[:port]/export},
 * {@code nbd+unix:///export?socket=/path}, libnbd's {@code nbd+vsock://cid[:port]/export}, and their TLS forms
 * {@code nbds}, {@code nbds+unix}, {@code nbds+vsock}. Pure: parsing only, no name resolution.
 *
 * @param tls        the scheme demands TLS (nbds, nbds+unix, nbds+vsock)
 * @param host       TCP host (IPv6 without brackets), or the vsock CID in decimal; null for unix sockets
 * @param port       TCP or vsock port (vsock's is unsigned 32-bit), 10809 by default; 0 for unix sockets
 * @param socketPath unix socket path; null for TCP and vsock
 * @param exportName the path without its leading '/', percent-decoded; may be empty (default export)
 * @param vsock      AF_VSOCK: {@code host} is a context id
 * @param tlsSettings the userinfo (PSK user name) and the TLS query parameters; {@link TlsSettings#NONE} if none
 */
public record NbdUri(boolean tls, String host, int port, String socketPath, String exportName, boolean vsock,
                     TlsSettings tlsSettings) {

    /** A TCP or unix URI. */
    public NbdUri(boolean tls, String host, int port, String socketPath, String exportName) {
        this(tls, host, port, socketPath, exportName, false);
    }

    public NbdUri(boolean tls, String host, int port, String socketPath, String exportName, boolean vsock) {
        this(tls, host, port, socketPath, exportName, vsock, TlsSettings.NONE);
    }

    /** This URI with {@code more} TLS settings (command-line flags, YAML keys); they must not contradict it. */
    public NbdUri withTls(TlsSettings more) throws InvalidNbdUriException {
        if (more.isEmpty()) {
            return this;
        }
        if (!tls) {
            throw new InvalidNbdUriException(more.describeGiven() + " given for " + this
                    + ", which does not ask for TLS; use " + tlsScheme());
        }
        try {
            return new NbdUri(tls, host, port, socketPath, exportName, vsock, tlsSettings.merge(more));
        } catch (IllegalArgumentException e) {
            throw new InvalidNbdUriException(e.getMessage());
        }
    }

    /** The host name a server certificate is checked against: tls-hostname, else the URI's host. */
    public String tlsHostname() {
        return tlsSettings.hostname() != null ? tlsSettings.hostname() : unixSocket() || vsock ? null : host;
    }

    private String tlsScheme() {
        return "nbds" + (unixSocket() ? "+unix" : vsock ? "+vsock" : "") + "://";
    }

    /** Query keys this parser knows (the spec's, libnbd's); others are refused unless they start with x-. */
    private static final Set<String> QUERY_KEYS = Set.of("socket", "tls-type", "tls-hostname", "tls-verify-peer",
            "tls-certificates", "tls-psk-file");

    /** The IANA port of NBD. */
    public static final int DEFAULT_PORT = 10809;

    public boolean unixSocket() {
        return socketPath != null;
    }

    /** Parses {@code text}; the exception's message is one line naming what is wrong. */
    public static NbdUri parse(String text) throws InvalidNbdUriException {
        URI uri;
        try {
            uri = new URI(text);
        } catch (URISyntaxException e) {
            throw new InvalidNbdUriException("'" + text + "' is not a valid URI: " + e.getReason());
        }
        String scheme = uri.getScheme();
        if (scheme == null) {
            throw new InvalidNbdUriException("'" + text + "' has no scheme; expected nbd://HOST[:PORT]/EXPORT"
                    + " or nbd+unix:///EXPORT?socket=PATH");
        }
        if (uri.isOpaque()) {
            throw new InvalidNbdUriException("'" + text + "' must be written " + scheme + "://...");
        }
        boolean tls;
        boolean unix = false;
        boolean vsock = false;
        switch (scheme.toLowerCase(java.util.Locale.ROOT)) {
            case "nbd" -> tls = false;
            case "nbds" -> tls = true;
            case "nbd+unix" -> { tls = false; unix = true; }
            case "nbds+unix" -> { tls = true; unix = true; }
            case "nbd+vsock" -> { tls = false; vsock = true; }
            case "nbds+vsock" -> { tls = true; vsock = true; }
            default -> throw new InvalidNbdUriException("unknown scheme '" + scheme
                    + "' in '" + text + "'; use nbd, nbds, nbd+unix, nbds+unix, nbd+vsock or nbds+vsock");
        }
        String path = uri.getPath() == null ? "" : uri.getPath();
        String export = path.startsWith("/") ? path.substring(1) : path;
        Map<String, String> query = query(text, uri.getRawQuery());
        String socket = query.get("socket");
        String rawAuthority = uri.getRawAuthority();
        int userEnd = rawAuthority == null ? -1 : rawAuthority.lastIndexOf('@');
        // The userinfo only names a PSK identity: without TLS it is ignored, as libnbd does.
        String user = tls && userEnd >= 0 ? decode(rawAuthority.substring(0, userEnd)) : null;
        TlsSettings settings = tlsSettings(text, query, user);
        if (!tls && !settings.isEmpty()) {
            throw new InvalidNbdUriException("'" + text + "' sets " + settings.describeGiven()
                    + " but does not ask for TLS; use nbds" + scheme.toLowerCase(java.util.Locale.ROOT).substring(3)
                    + "://");
        }
        if (unix) {
            if (socket == null || socket.isEmpty()) {
                throw new InvalidNbdUriException("'" + text + "' needs the unix socket as ?socket=PATH");
            }
            if (uri.getRawAuthority() != null && !uri.getRawAuthority().isEmpty()) {
                throw new InvalidNbdUriException("'" + text + "' is a unix socket URI and must not name a host;"
                        + " write " + scheme + ":///" + export + "?socket=" + socket);
            }
            return new NbdUri(tls, null, 0, socket, export, false, settings);
        }
        String authority = uri.getRawAuthority();
        if (authority == null || authority.isEmpty()) {
            throw new InvalidNbdUriException("'" + text + "' names no host; expected " + scheme + "://HOST[:PORT]/EXPORT");
        }
        int at = authority.lastIndexOf('@');
        if (at >= 0) {
            authority = authority.substring(at + 1); // userinfo is only for TLS authentication
        }
        if (vsock) {
            return vsock(text, tls, authority, export, settings);
        }
        String host;
        String portText = null;
        if (authority.startsWith("[")) {
            int close = authority.indexOf(']');
            if (close < 0) {
                throw new InvalidNbdUriException("unclosed '[' in the IPv6 address of '" + text + "'");
            }
            host = authority.substring(1, close);
            String rest = authority.substring(close + 1);
            if (rest.startsWith(":")) {
                portText = rest.substring(1);
            } else if (!rest.isEmpty()) {
                throw new InvalidNbdUriException("unexpected '" + rest + "' after the IPv6 address in '" + text + "'");
            }
        } else {
            int colon = authority.lastIndexOf(':');
            host = colon < 0 ? authority : authority.substring(0, colon);
            portText = colon < 0 ? null : authority.substring(colon + 1);
        }
        host = decode(host);
        if (host.isEmpty()) {
            throw new InvalidNbdUriException("'" + text + "' names no host");
        }
        int port = DEFAULT_PORT;
        if (portText != null && !portText.isEmpty()) {
            try {
                port = Integer.parseInt(portText);
            } catch (NumberFormatException e) {
                port = -1;
            }
            if (port < 1 || port > 65535) {
                throw new InvalidNbdUriException("port '" + portText + "' in '" + text + "' is not a number from 1 to 65535");
            }
        }
        return new NbdUri(tls, host, port, null, export, false, settings);
    }

    /** nbd+vsock://CID[:PORT]/EXPORT: both unsigned 32-bit numbers. */
    private static NbdUri vsock(String text, boolean tls, String authority, String export, TlsSettings settings)
            throws InvalidNbdUriException {
        int colon = authority.indexOf(':');
        String cid = colon < 0 ? authority : authority.substring(0, colon);
        String portText = colon < 0 ? null : authority.substring(colon + 1);
        if (unsigned32(cid) < 0) {
            throw new InvalidNbdUriException("vsock context id '" + cid + "' in '" + text
                    + "' is not a number from 0 to 4294967295 (2 is the host, 1 this machine)");
        }
        long port = DEFAULT_PORT;
        if (portText != null && !portText.isEmpty()) {
            port = unsigned32(portText);
            if (port < 1) {
                throw new InvalidNbdUriException("vsock port '" + portText + "' in '" + text
                        + "' is not a number from 1 to 4294967295");
            }
        }
        return new NbdUri(tls, Long.toString(unsigned32(cid)), (int) port, null, export, true, settings);
    }

    /** {@code s} as an unsigned 32-bit decimal number, or -1. */
    private static long unsigned32(String s) {
        if (s.isEmpty() || s.length() > 10 || !s.chars().allMatch(Character::isDigit)) {
            return -1;
        }
        long v = Long.parseLong(s);
        return v > 0xffff_ffffL ? -1 : v;
    }

    /** The query's parameters, percent-decoded; unknown keys (but x-...) and repeated keys are refused. */
    private static Map<String, String> query(String text, String rawQuery) throws InvalidNbdUriException {
        Map<String, String> query = new LinkedHashMap<>();
        if (rawQuery == null || rawQuery.isEmpty()) {
            return query;
        }
        for (String pair : rawQuery.split("&")) {
            int eq = pair.indexOf('=');
            String k = decode(eq < 0 ? pair : pair.substring(0, eq));
            if (!QUERY_KEYS.contains(k) && !k.startsWith("x-")) {
                throw new InvalidNbdUriException("unknown parameter '" + k + "' in '" + text + "'; known: "
                        + String.join(", ", QUERY_KEYS.stream().sorted().toList()));
            }
            if (query.put(k, eq < 0 ? "" : decode(pair.substring(eq + 1))) != null) {
                throw new InvalidNbdUriException("parameter '" + k + "' is given twice in '" + text + "'");
            }
        }
        return query;
    }

    private static TlsSettings tlsSettings(String text, Map<String, String> query, String user)
            throws InvalidNbdUriException {
        TlsSettings.Type type = null;
        if (query.containsKey("tls-type")) {
            try {
                type = TlsSettings.Type.parse(query.get("tls-type"));
            } catch (IllegalArgumentException e) {
                throw new InvalidNbdUriException(e.getMessage() + " (in '" + text + "')");
            }
        }
        Boolean verify = null;
        String v = query.get("tls-verify-peer");
        if (v != null) {
            verify = switch (v.toLowerCase(java.util.Locale.ROOT)) {
                case "1", "true", "yes", "on" -> true;
                case "0", "false", "no", "off" -> false;
                default -> throw new InvalidNbdUriException("tls-verify-peer must be 0 or 1, not '" + v + "' (in '"
                        + text + "')");
            };
        }
        return new TlsSettings(type, nonEmpty(query.get("tls-hostname")), verify, path(query.get("tls-certificates")),
                path(query.get("tls-psk-file")), nonEmpty(user));
    }

    private static String nonEmpty(String s) {
        return s == null || s.isEmpty() ? null : s;
    }

    private static Path path(String s) {
        return s == null || s.isEmpty() ? null : Path.of(s);
    }

    /** RFC 3986 percent-decoding ('+' stays '+'). */
    private static String decode(String s) throws InvalidNbdUriException {
        if (s.indexOf('%') < 0) {
            return s;
        }
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            if (c == '%') {
                if (i + 2 >= s.length()) {
                    throw new InvalidNbdUriException("truncated percent escape in '" + s + "'");
                }
                int hi = Character.digit(s.charAt(i + 1), 16);
                int lo = Character.digit(s.charAt(i + 2), 16);
                if (hi < 0 || lo < 0) {
                    throw new InvalidNbdUriException("bad percent escape in '" + s + "'");
                }
                out.write(hi * 16 + lo);
                i += 2;
            } else {
                byte[] b = String.valueOf(c).getBytes(StandardCharsets.UTF_8);
                out.write(b, 0, b.length);
            }
        }
        return out.toString(StandardCharsets.UTF_8);
    }

    @Override
    public String toString() {
        String scheme = (tls ? "nbds" : "nbd") + (unixSocket() ? "+unix" : vsock ? "+vsock" : "");
        if (unixSocket()) {
            return scheme + ":///" + exportName + "?socket=" + socketPath;
        }
        if (vsock) {
            return scheme + "://" + host + ":" + Integer.toUnsignedString(port) + "/" + exportName;
        }
        String h = host.contains(":") ? "[" + host + "]" : host;
        return scheme + "://" + h + ":" + port + "/" + exportName;
    }
}
