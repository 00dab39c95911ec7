package io.nbdgate.gateway.tls;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/** A file of {@code identity:hexkey} lines, as nbdkit's --tls-psk and GnuTLS's psktool use it; # comments. */
final class PskFile {
    private PskFile() {
    }

    static Map<String, byte[]> read(Path file) {
        List<String> lines;
        try {
            lines = Files.readAllLines(file, StandardCharsets.UTF_8);
        } catch (NoSuchFileException e) {
            throw new TlsException("PSK file " + file + " does not exist");
        } catch (IOException e) {
            throw new TlsException("cannot read PSK file " + file + ": " + e.getMessage(), e);
        }
        Map<String, byte[]> keys = new LinkedHashMap<>();
        for (int i = 0; i < lines.size(); i++) {
            String line = lines.get(i).strip();
            if (line.isEmpty() || line.startsWith("#")) {
                continue;
            }
            int colon = line.lastIndexOf(':');
            byte[] key;
            try {
                key = colon > 0 ? HexFormat.of().parseHex(line.substring(colon + 1)) : new byte[0];
            } catch (IllegalArgumentException e) {
                key = new byte[0];
            }
            if (key.length == 0) {
                throw new TlsException("line " + (i + 1) + " of " + file + " is not identity:hexkey");
            }
            keys.put(line.substring(0, colon), key);
        }
        return keys;
    }
}
