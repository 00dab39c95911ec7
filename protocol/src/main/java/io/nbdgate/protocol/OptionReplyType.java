package io.nbdgate.protocol;

/** Reply types of fixed-newstyle option replies; errors have bit 31 set (proto.md, "Option reply types"). */
public enum OptionReplyType {
    ACK(1),
    SERVER(2),
    INFO(3),
    META_CONTEXT(4),
    ERR_UNSUP(0x8000_0001),
    ERR_POLICY(0x8000_0002),
    ERR_INVALID(0x8000_0003),
    ERR_PLATFORM(0x8000_0004),
    ERR_TLS_REQD(0x8000_0005),
    ERR_UNKNOWN(0x8000_0006),
    ERR_SHUTDOWN(0x8000_0007),
    ERR_BLOCK_SIZE_REQD(0x8000_0008),
    ERR_TOO_BIG(0x8000_0009),
    ERR_EXT_HEADER_REQD(0x8000_000a);

    private static final int ERROR_BIT = 0x8000_0000;

    private final int code;

    OptionReplyType(int code) {
        this.code = code;
    }

    public int code() {
        return code;
    }

    public boolean isError() {
        return isError(code);
    }

    /** Any reply type with bit 31 set is an error, known or not. */
    public static boolean isError(int code) {
        return (code & ERROR_BIT) != 0;
    }

    /** The reply type with this wire value, or null if unknown. */
    public static OptionReplyType fromCode(int code) {
        for (OptionReplyType t : values()) {
            if (t.code == code) {
                return t;
            }
        }
        return null;
    }
}
