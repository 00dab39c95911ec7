package io.nbdgate.protocol;

/** Option types sent by the client during option haggling (proto.md, "Option types"). */
public enum NbdOption {
    EXPORT_NAME(1),
    ABORT(2),
    LIST(3),
    /** Withdrawn PEEK_EXPORT extension; listed so the number is never reused by accident. */
    PEEK_EXPORT(4),
    STARTTLS(5),
    INFO(6),
    GO(7),
    STRUCTURED_REPLY(8),
    LIST_META_CONTEXT(9),
    SET_META_CONTEXT(10),
    EXTENDED_HEADERS(11);

    private final int code;

    NbdOption(int code) {
        this.code = code;
    }

    /** The 32-bit value on the wire. */
    public int code() {
        return code;
    }

    /** The option with this wire value, or null if this implementation does not know it. */
    public static NbdOption fromCode(int code) {
        for (NbdOption o : values()) {
            if (o.code == code) {
                return o;
            }
        }
        return null;
    }
}
