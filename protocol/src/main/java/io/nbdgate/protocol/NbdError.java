package io.nbdgate.protocol;

/**
 * Error values of replies (proto.md, "Error values"). The wire values equal Linux errno values;
 * a client treats any value it does not know as EINVAL.
 */
public enum NbdError {
    EPERM(1),
    EIO(5),
    ENOMEM(12),
    EINVAL(22),
    ENOSPC(28),
    EOVERFLOW(75),
    /** Linux EOPNOTSUPP. */
    ENOTSUP(95),
    /** The server is shutting down: the client must initiate a soft disconnect. */
    ESHUTDOWN(108);

    private final int code;

    NbdError(int code) {
        this.code = code;
    }

    /** The 32-bit value on the wire. */
    public int code() {
        return code;
    }

    /** The Linux errno a block request should complete with. */
    public int errno() {
        return code;
    }

    /** Client side: the wire value as an error; unknown non-zero values become EINVAL as the spec asks. */
    public static NbdError fromWire(int code) {
        for (NbdError e : values()) {
            if (e.code == code) {
                return e;
            }
        }
        return EINVAL;
    }

    /** Server side: a Linux errno from a backend as the closest NBD error. */
    public static NbdError fromErrno(int errno) {
        return switch (errno) {
            case 1, 13, 30 -> EPERM;       // EPERM, EACCES, EROFS
            case 12 -> ENOMEM;
            case 22 -> EINVAL;
            case 27, 28, 122 -> ENOSPC;    // EFBIG, ENOSPC, EDQUOT, as the spec asks
            case 75 -> EOVERFLOW;
            case 95 -> ENOTSUP;
            case 108 -> ESHUTDOWN;
            default -> EIO;
        };
    }
}
