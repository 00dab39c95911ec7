package io.nbdgate.protocol;

/** Request types of the transmission phase (proto.md, "Request types"). */
public enum Command {
    READ(0),
    WRITE(1),
    DISC(2),
    FLUSH(3),
    TRIM(4),
    CACHE(5),
    WRITE_ZEROES(6),
    BLOCK_STATUS(7),
    /** Experimental RESIZE extension. */
    RESIZE(8);

    private static final Command[] BY_CODE = values();

    private final int code;

    Command(int code) {
        this.code = code;
    }

    /** The 16-bit value on the wire. */
    public int code() {
        return code;
    }

    /** The command with this wire value, or null; servers answer unknown commands with EINVAL. */
    public static Command fromCode(int code) {
        return code >= 0 && code < BY_CODE.length ? BY_CODE[code] : null;
    }
}
