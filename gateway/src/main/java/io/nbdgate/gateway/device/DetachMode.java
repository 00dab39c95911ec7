package io.nbdgate.gateway.device;

import java.util.Locale;

/**
 * What a detach does to a device that is still open (mounted, held by a process, or under a stacked device),
 * in the terms of the tools administrators know: dmsetup remove refuses, --force, --deferred; losetup -d
 * defers; nbd-client -d cuts at once. A device nobody has open is removed at once in every mode.
 */
public enum DetachMode {
    /** Refuse, naming who holds it: nothing changes (dmsetup remove). */
    REFUSE,
    /** Remove now: requests in flight and later ones fail with EIO, a filesystem on it shuts down. */
    FORCE,
    /** Remove when the last user closes it; until then it serves as before and `list` says it is pending. */
    DEFERRED;

    public String label() {
        return name().toLowerCase(Locale.ROOT);
    }

    /** The mode named {@code label} (refuse, force, deferred); IllegalArgumentException naming them otherwise. */
    public static DetachMode of(String label) {
        for (DetachMode m : values()) {
            if (m.label().equals(label)) {
                return m;
            }
        }
        throw new IllegalArgumentException("detach mode must be refuse, force or deferred, got '" + label + "'");
    }
}
