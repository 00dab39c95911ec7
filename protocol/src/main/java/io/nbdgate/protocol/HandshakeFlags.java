package io.nbdgate.protocol;

/** The 16 handshake flags the server sends and the 32 client flags the client answers with. */
public final class HandshakeFlags {
    private HandshakeFlags() {}

    /** Server: NBD_FLAG_FIXED_NEWSTYLE. */
    public static final int FIXED_NEWSTYLE = 1;
    /** Server: NBD_FLAG_NO_ZEROES, may omit the 124 zeroes after NBD_OPT_EXPORT_NAME. */
    public static final int NO_ZEROES = 1 << 1;

    /** Client: NBD_FLAG_C_FIXED_NEWSTYLE. */
    public static final int C_FIXED_NEWSTYLE = 1;
    /** Client: NBD_FLAG_C_NO_ZEROES; only if the server offered NO_ZEROES. */
    public static final int C_NO_ZEROES = 1 << 1;
    /** A server must drop a client that sets anything else. */
    public static final int C_KNOWN = C_FIXED_NEWSTYLE | C_NO_ZEROES;
}
