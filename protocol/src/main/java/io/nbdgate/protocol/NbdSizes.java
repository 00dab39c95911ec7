package io.nbdgate.protocol;

/** Fixed sizes of wire structures and the default size constraints (proto.md, "Size constraints"). */
public final class NbdSizes {
    private NbdSizes() {}

    public static final int REQUEST_HEADER = 28;
    public static final int EXTENDED_REQUEST_HEADER = 32;
    public static final int SIMPLE_REPLY_HEADER = 16;
    public static final int STRUCTURED_REPLY_HEADER = 20;
    public static final int EXTENDED_REPLY_HEADER = 32;
    /** Option header the client sends: IHAVEOPT, option, length. */
    public static final int OPTION_HEADER = 16;
    /** Option reply header: magic, option, reply type, length. */
    public static final int OPTION_REPLY_HEADER = 20;
    /** Reply to NBD_OPT_EXPORT_NAME: size, flags, then 124 zero bytes unless NO_ZEROES. */
    public static final int EXPORT_NAME_REPLY = 10;
    public static final int EXPORT_NAME_REPLY_ZEROES = 124;

    /** Strings (names, descriptions, messages) are limited to 4096 bytes by the spec. */
    public static final int MAX_STRING = 4096;

    public static final int DEFAULT_MINIMUM_BLOCK = 1;
    public static final int DEFAULT_PREFERRED_BLOCK = 4096;
    /** 2^25: the payload every server must accept and that is never deemed a denial of service. */
    public static final int DEFAULT_MAXIMUM_PAYLOAD = 1 << 25;
    /** Largest minimum block size a server may advertise. */
    public static final int MAX_MINIMUM_BLOCK = 1 << 16;
}
