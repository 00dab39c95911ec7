package io.nbdgate.protocol;

import java.util.EnumSet;
import java.util.Set;

/** The 16 transmission flags of an export (proto.md, "Transmission flags"); unknown bits are ignored. */
public enum TransmissionFlag {
    HAS_FLAGS(0),
    READ_ONLY(1),
    SEND_FLUSH(2),
    SEND_FUA(3),
    ROTATIONAL(4),
    SEND_TRIM(5),
    SEND_WRITE_ZEROES(6),
    SEND_DF(7),
    CAN_MULTI_CONN(8),
    SEND_RESIZE(9),
    SEND_CACHE(10),
    SEND_FAST_ZERO(11),
    BLOCK_STATUS_PAYLOAD(12);

    private final int bit;

    TransmissionFlag(int bit) {
        this.bit = bit;
    }

    public int mask() {
        return 1 << bit;
    }

    public boolean isSetIn(int flags) {
        return (flags & mask()) != 0;
    }

    public static Set<TransmissionFlag> decode(int flags) {
        EnumSet<TransmissionFlag> set = EnumSet.noneOf(TransmissionFlag.class);
        for (TransmissionFlag f : values()) {
            if (f.isSetIn(flags)) {
                set.add(f);
            }
        }
        return set;
    }

    public static int encode(Set<TransmissionFlag> flags) {
        int v = 0;
        for (TransmissionFlag f : flags) {
            v |= f.mask();
        }
        return v;
    }
}
