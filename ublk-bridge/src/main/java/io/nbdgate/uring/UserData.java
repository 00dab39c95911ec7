package io.nbdgate.uring;

/**
 * The 16 bits of per-operation data Netty carries to a handle's completion: what kind of operation it
 * was in the top 4 bits, the tag (or another small index below 4096) in the rest. Every handle on our
 * rings encodes its operations this way, so a completion decodes the same everywhere.
 */
public final class UserData {
    /** Tags and indexes must stay below this. */
    public static final int MAX_INDEX = 1 << 12;

    private UserData() {
    }

    public static short encode(int kind, int index) {
        if (kind < 0 || kind > 0xf || index < 0 || index >= MAX_INDEX) {
            throw new IllegalArgumentException("kind " + kind + " / index " + index + " do not fit in 4 + 12 bits");
        }
        return (short) (kind << 12 | index);
    }

    public static int kind(int data) {
        return (data >>> 12) & 0xf;
    }

    public static int index(int data) {
        return data & 0xfff;
    }
}
