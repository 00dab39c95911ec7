package io.nbdgate.gateway.nbd.server;

import java.io.IOException;
import java.nio.file.Path;
import java.util.Locale;
import java.util.OptionalLong;

/**
 * The text form of an export on the command line: {@code NAME=memory:SIZE} or
 * {@code NAME=file:PATH[:SIZE]}, sizes as bytes or with K, M, G, T (powers of 1024).
 */
public record ExportSpec(String name, Kind kind, Path path, OptionalLong size) {

    public enum Kind { MEMORY, FILE }

    /** Parses one spec; the exception message is one line the user can act on. */
    public static ExportSpec parse(String text) {
        int eq = text.indexOf('=');
        if (eq < 0) throw new IllegalArgumentException("export '" + text + "' needs the form NAME=memory:SIZE or NAME=file:PATH[:SIZE]");
        String name = text.substring(0, eq);
        String rest = text.substring(eq + 1);
        if (rest.startsWith("memory:")) {
            return new ExportSpec(name, Kind.MEMORY, null, OptionalLong.of(parseSize(rest.substring("memory:".length()))));
        }
        if (rest.startsWith("file:")) {
            String body = rest.substring("file:".length());
            int colon = body.lastIndexOf(':');
            if (colon > 0 && looksLikeSize(body.substring(colon + 1))) {
                return new ExportSpec(name, Kind.FILE, Path.of(body.substring(0, colon)), OptionalLong.of(parseSize(body.substring(colon + 1))));
            }
            if (body.isEmpty()) throw new IllegalArgumentException("export '" + name + "': file: needs a path");
            return new ExportSpec(name, Kind.FILE, Path.of(body), OptionalLong.empty());
        }
        throw new IllegalArgumentException("export '" + name + "': unknown backend in '" + rest + "'; use memory:SIZE or file:PATH[:SIZE]");
    }

    private static boolean looksLikeSize(String s) {
        return s.matches("(?i)\\d+[kmgt]?");
    }

    /** "1G" → 1073741824; plain digits are bytes. */
    public static long parseSize(String s) {
        if (!looksLikeSize(s)) throw new IllegalArgumentException("size '" + s + "' is not a number with an optional K, M, G or T suffix");
        char unit = Character.toUpperCase(s.charAt(s.length() - 1));
        String digits = Character.isDigit(unit) ? s : s.substring(0, s.length() - 1);
        int shift = switch (unit) {
            case 'K' -> 10;
            case 'M' -> 20;
            case 'G' -> 30;
            case 'T' -> 40;
            default -> 0;
        };
        long v = Long.parseLong(digits);
        if (v > (Long.MAX_VALUE >> shift)) throw new IllegalArgumentException("size '" + s + "' is too large");
        return v << shift;
    }

    /** Opens the backend the spec describes. */
    public Export open(boolean readOnly) throws IOException {
        return switch (kind) {
            case MEMORY -> Export.memory(name, size.getAsLong(), readOnly);
            case FILE -> Export.file(name, path, size, readOnly);
        };
    }

    @Override
    public String toString() {
        return name + "=" + kind.name().toLowerCase(Locale.ROOT) + (path != null ? ":" + path : "")
                + (size.isPresent() ? ":" + size.getAsLong() : "");
    }
}
