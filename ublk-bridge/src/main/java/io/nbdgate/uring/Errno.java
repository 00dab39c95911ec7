package io.nbdgate.uring;

/** errno numbers of x86_64 Linux that nbdgate meets, by name (asm-generic/errno*.h): the one errno table. */
public final class Errno {
    public static final int EPERM = 1, ENOENT = 2, EINTR = 4, EIO = 5, ENXIO = 6, E2BIG = 7, EBADF = 9,
            EAGAIN = 11, ENOMEM = 12, EACCES = 13, EFAULT = 14, EBUSY = 16, EEXIST = 17, ENODEV = 19,
            EINVAL = 22, ENFILE = 23, EMFILE = 24, ENOTTY = 25, ENOSPC = 28, EROFS = 30, EOPNOTSUPP = 95,
            ETIME = 62, ENOSYS = 38, ECANCELED = 125, ETIMEDOUT = 110, ENOBUFS = 105, EOVERFLOW = 75,
            EPIPE = 32, ENETUNREACH = 101, ECONNABORTED = 103, ECONNRESET = 104, ENOTCONN = 107, ESHUTDOWN = 108,
            ECONNREFUSED = 111, EHOSTDOWN = 112, EHOSTUNREACH = 113, EALREADY = 114, EINPROGRESS = 115,
            EAFNOSUPPORT = 97, ENOTSOCK = 88;

    private Errno() {
    }

    public static String name(int errno) {
        return switch (errno) {
            case EPERM -> "EPERM";
            case ENOENT -> "ENOENT";
            case EINTR -> "EINTR";
            case EIO -> "EIO";
            case ENXIO -> "ENXIO";
            case E2BIG -> "E2BIG";
            case EBADF -> "EBADF";
            case EAGAIN -> "EAGAIN";
            case ENOMEM -> "ENOMEM";
            case EACCES -> "EACCES";
            case EFAULT -> "EFAULT";
            case EBUSY -> "EBUSY";
            case EEXIST -> "EEXIST";
            case ENODEV -> "ENODEV";
            case EINVAL -> "EINVAL";
            case ENFILE -> "ENFILE";
            case EMFILE -> "EMFILE";
            case ENOTTY -> "ENOTTY";
            case ENOSPC -> "ENOSPC";
            case EROFS -> "EROFS";
            case EOPNOTSUPP -> "EOPNOTSUPP";
            case ENOTSOCK -> "ENOTSOCK";
            case ETIME -> "ETIME";
            case ENOSYS -> "ENOSYS";
            case ECANCELED -> "ECANCELED";
            case ETIMEDOUT -> "ETIMEDOUT";
            case ENOBUFS -> "ENOBUFS";
            case EOVERFLOW -> "EOVERFLOW";
            case EPIPE -> "EPIPE";
            case ENETUNREACH -> "ENETUNREACH";
            case ECONNABORTED -> "ECONNABORTED";
            case ECONNRESET -> "ECONNRESET";
            case ENOTCONN -> "ENOTCONN";
            case ESHUTDOWN -> "ESHUTDOWN";
            case ECONNREFUSED -> "ECONNREFUSED";
            case EHOSTDOWN -> "EHOSTDOWN";
            case EHOSTUNREACH -> "EHOSTUNREACH";
            case EALREADY -> "EALREADY";
            case EINPROGRESS -> "EINPROGRESS";
            case EAFNOSUPPORT -> "EAFNOSUPPORT";
            default -> "errno";
        };
    }

    /** For messages: "ECONNRESET (104)". */
    public static String describe(int errno) {
        return name(errno) + " (" + errno + ")";
    }
}
