package io.nbdgate.protocol;

/** Information types in NBD_REP_INFO replies and NBD_OPT_INFO/GO requests (proto.md, "NBD_REP_INFO"). */
public enum InfoType {
    /** Size and transmission flags; length 12. */
    EXPORT(0),
    /** Canonical export name; length at least 2. */
    NAME(1),
    /** Human-readable description; length at least 2. */
    DESCRIPTION(2),
    /** Minimum, preferred and maximum payload size; length 14. */
    BLOCK_SIZE(3);

    private final int code;

    InfoType(int code) {
        this.code = code;
    }

    /** The 16-bit value on the wire. */
    public int code() {
        return code;
    }

    /** The info type with this value, or null: clients must ignore unknown info types. */
    public static InfoType fromCode(int code) {
        for (InfoType t : values()) {
            if (t.code == code) {
                return t;
            }
        }
        return null;
    }
}
