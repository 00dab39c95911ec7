package io.nbdgate.protocol;

/** Magic numbers of the NBD protocol (proto.md, "Handshake", "Transmission", "Reserved Magic values"). */
public final class NbdMagic {
    private NbdMagic() {}

    /** 'NBDMAGIC', first 8 bytes the server sends (also called INIT_PASSWD). */
    public static final long NBDMAGIC = 0x4e42444d41474943L;
    /** 'IHAVEOPT': newstyle handshake magic, and the prefix of every client option. */
    public static final long IHAVEOPT = 0x49484156454F5054L;
    /** Oldstyle negotiation magic (cliserv_magic); only recognised to reject oldstyle servers. */
    public static final long CLISERV_MAGIC = 0x00420281861253L;
    /** Prefix of every fixed-newstyle option reply. */
    public static final long OPTION_REPLY = 0x3e889045565a9L;

    /** NBD_REQUEST_MAGIC: compact 28-byte request header. */
    public static final int REQUEST = 0x25609513;
    /** NBD_EXTENDED_REQUEST_MAGIC: 32-byte request header after NBD_OPT_EXTENDED_HEADERS. */
    public static final int EXTENDED_REQUEST = 0x21e41c71;
    /** NBD_SIMPLE_REPLY_MAGIC: 16-byte simple reply. */
    public static final int SIMPLE_REPLY = 0x67446698;
    /** NBD_STRUCTURED_REPLY_MAGIC: 20-byte structured reply chunk header. */
    public static final int STRUCTURED_REPLY = 0x668e33ef;
    /** NBD_EXTENDED_REPLY_MAGIC: 32-byte extended reply chunk header. */
    public static final int EXTENDED_REPLY = 0x6e8a278c;
}
