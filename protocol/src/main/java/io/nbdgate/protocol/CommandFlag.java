package io.nbdgate.protocol;

/** Command flags of a request (proto.md, "Command flags"). */
public final class CommandFlag {
    private CommandFlag() {}

    /** Persist before replying; only if the export has SEND_FUA. */
    public static final int FUA = 1;
    /** WRITE_ZEROES must allocate, not punch a hole. */
    public static final int NO_HOLE = 1 << 1;
    /** READ: at most one content chunk; only if the export has SEND_DF. */
    public static final int DF = 1 << 2;
    /** BLOCK_STATUS: one extent per context. */
    public static final int REQ_ONE = 1 << 3;
    /** WRITE_ZEROES: fail with ENOTSUP unless faster than a write; only with SEND_FAST_ZERO. */
    public static final int FAST_ZERO = 1 << 4;
    /** Extended headers: length is a payload length, payload follows the header. */
    public static final int PAYLOAD_LEN = 1 << 5;

    public static final int KNOWN = FUA | NO_HOLE | DF | REQ_ONE | FAST_ZERO | PAYLOAD_LEN;
}
