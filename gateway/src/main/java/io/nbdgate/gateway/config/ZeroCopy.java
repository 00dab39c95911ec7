package io.nbdgate.gateway.config;

import java.util.Locale;

/** The {@code zero-copy} setting of a device: {@code auto} picks the best mode the kernel offers. */
public enum ZeroCopy {
    AUTO, ON, OFF;

    static ZeroCopy parse(String text) {
        return switch (text.toLowerCase(Locale.ROOT)) {
            case "auto" -> AUTO;
            case "on", "true" -> ON;
            case "off", "false" -> OFF;
            default -> throw new IllegalArgumentException("must be auto, on or off");
        };
    }

    @Override
    public String toString() {
        return name().toLowerCase(Locale.ROOT);
    }
}
