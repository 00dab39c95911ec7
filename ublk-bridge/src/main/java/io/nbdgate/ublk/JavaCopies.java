package io.nbdgate.ublk;

import java.util.concurrent.atomic.LongAdder;

/** Bytes of request data that Java code copied; must stay 0 in zero-copy mode. Targets that copy add here. */
public final class JavaCopies {
    private static final LongAdder BYTES = new LongAdder();

    private JavaCopies() {
    }

    public static void add(long bytes) {
        BYTES.add(bytes);
    }

    public static long bytes() {
        return BYTES.sum();
    }
}
