package io.nbdgate.protocol;

/** Structured and extended reply chunk types (proto.md, "Structured reply types"). */
public enum ReplyType {
    NONE(0),
    OFFSET_DATA(1),
    OFFSET_HOLE(2),
    BLOCK_STATUS(5),
    BLOCK_STATUS_EXT(6),
    ERROR(0x8001),
    ERROR_OFFSET(0x8002);

    /** NBD_REPLY_FLAG_DONE: the last chunk of a reply. */
    public static final int FLAG_DONE = 1;

    private static final int ERROR_BIT = 0x8000;

    private final int code;

    ReplyType(int code) {
        this.code = code;
    }

    /** The 16-bit value on the wire. */
    private static final ReplyType[] ALL = values();

    public int code() {
        return code;
    }

    /** Bit 15 marks an error chunk, even of an unknown type: the reply fails but the connection lives. */
    public static boolean isError(int code) {
        return (code & ERROR_BIT) != 0;
    }

    /** The chunk type with this wire value, or null if unknown. Once per reply chunk: no values() clone. */
    public static ReplyType fromCode(int code) {
        for (ReplyType t : ALL) {
            if (t.code == code) {
                return t;
            }
        }
        return null;
    }
}
