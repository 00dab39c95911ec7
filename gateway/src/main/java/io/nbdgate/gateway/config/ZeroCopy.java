package io.nbdgate.gateway.config;

import java.util.Locale;

/** The {@code zero-copy} setting of a device: {@code auto} picks the best mode the kernel offers. */
public enum ZeroCopy {
    AUTO, ON, OFF;

    @Override
    public String toString() {
        return name().toLowerCase(Locale.ROOT);
    }
}
