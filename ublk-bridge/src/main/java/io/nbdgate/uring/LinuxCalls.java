package io.nbdgate.uring;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemoryLayout;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.StructLayout;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;

/**
 * Raw x86_64 Linux system calls through libc's {@code syscall(2)}: one downcall handle for all, so
 * every kernel entry point of this module reports errno the same way.
 */
public final class LinuxCalls {
    static final int SYS_READ = 0, SYS_WRITE = 1, SYS_CLOSE = 3, SYS_POLL = 7, SYS_CONNECT = 42, SYS_GETSOCKOPT = 55, SYS_MMAP = 9, SYS_MUNMAP = 11,
            SYS_PREAD64 = 17, SYS_PWRITE64 = 18, SYS_FSYNC = 74, SYS_FTRUNCATE = 77, SYS_GETPID = 39,
            SYS_KILL = 62, SYS_SYNC = 162, SYS_SOCKET = 41, SYS_SHUTDOWN = 48, SYS_SOCKETPAIR = 53, SYS_SENDTO = 44, SYS_RECVFROM = 45, SYS_SENDMSG = 46, SYS_RECVMSG = 47, SYS_BIND = 49, SYS_SETSOCKOPT = 54,
            SYS_UMASK = 95, SYS_MLOCKALL = 151, SYS_EXECVE = 59, SYS_PRCTL = 157, SYS_OPENAT = 257, SYS_MEMFD_CREATE = 319, SYS_IO_URING_SETUP = 425,
            SYS_IO_URING_ENTER = 426, SYS_IO_URING_REGISTER = 427;
    /** Socket option levels and names (asm-generic/socket.h, linux/tcp.h) the data path sets. */
    public static final int SOL_SOCKET = 1, SO_SNDBUF = 7, SO_KEEPALIVE = 9, SO_LINGER = 13, SO_RCVLOWAT = 18,
            IPPROTO_TCP = 6,
            TCP_NODELAY = 1, TCP_KEEPIDLE = 4, TCP_KEEPINTVL = 5, TCP_KEEPCNT = 6, TCP_USER_TIMEOUT = 18;

    public static final int O_RDONLY = 0, O_WRONLY = 1, O_RDWR = 2, O_CREAT = 0100, O_TRUNC = 01000,
            O_CLOEXEC = 02000000, O_DIRECT = 040000, O_NONBLOCK = 04000;
    static final int AT_FDCWD = -100;
    static final int AF_UNIX = 1, SOCK_DGRAM = 2, SOCK_CLOEXEC = 02000000;
    public static final int MSG_DONTWAIT = 0x40;
    /** sizeof(struct sockaddr_un): sa_family_t, then sun_path[108]. */
    static final int SOCKADDR_UN_SIZE = 110;
    static final int PROT_READ = 1, PROT_WRITE = 2, MAP_SHARED = 1, MAP_PRIVATE = 2, MAP_ANONYMOUS = 0x20,
            MAP_POPULATE = 0x8000;

    private static final StructLayout CAPTURE = Linker.Option.captureStateLayout();
    private static final long ERRNO_OFFSET = CAPTURE.byteOffset(MemoryLayout.PathElement.groupElement("errno"));
    private static final MethodHandle SYSCALL;
    /** One errno capture buffer per thread, so a syscall allocates nothing. */
    private static final ThreadLocal<MemorySegment> ERRNO_BUFFER =
            ThreadLocal.withInitial(() -> Arena.ofAuto().allocate(CAPTURE));

    static {
        Linker linker = Linker.nativeLinker();
        ValueLayout.OfLong j = ValueLayout.JAVA_LONG;
        SYSCALL = linker.downcallHandle(
                linker.defaultLookup().find("syscall").orElseThrow(),
                FunctionDescriptor.of(j, j, j, j, j, j, j, j),
                Linker.Option.firstVariadicArg(1),
                Linker.Option.captureCallState("errno"));
    }

    private LinuxCalls() {
    }

    /** Returns the raw result, or minus errno on failure (the kernel's own convention). */
    static long raw(long nr, long a1, long a2, long a3, long a4, long a5, long a6) {
        MemorySegment errno = ERRNO_BUFFER.get();
        long r;
        try {
            r = (long) SYSCALL.invokeExact(errno, nr, a1, a2, a3, a4, a5, a6);
        } catch (Throwable t) {
            throw new IllegalStateException("syscall downcall failed", t);
        }
        return r == -1 ? -errno.get(ValueLayout.JAVA_INT, ERRNO_OFFSET) : r;
    }

    /** Like {@link #raw} but retries EINTR and throws for any other error. */
    static long check(String call, long nr, long a1, long a2, long a3, long a4, long a5, long a6)
            throws UringException {
        while (true) {
            long r = raw(nr, a1, a2, a3, a4, a5, a6);
            if (r >= 0) {
                return r;
            }
            if (r != -Errno.EINTR) {
                throw new UringException(call, (int) -r);
            }
        }
    }

    public static int open(String path, int flags, int mode) throws UringException {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment cpath = arena.allocateFrom(path);
            return (int) check("open " + path, SYS_OPENAT, AT_FDCWD, cpath.address(), flags | O_CLOEXEC, mode, 0, 0);
        }
    }

    public static void close(int fd) {
        raw(SYS_CLOSE, fd, 0, 0, 0, 0, 0);
    }

    public static int memfdCreate(String name) throws UringException {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment cname = arena.allocateFrom(name);
            return (int) check("memfd_create", SYS_MEMFD_CREATE, cname.address(), 1 /* MFD_CLOEXEC */, 0, 0, 0, 0);
        }
    }

    public static void ftruncate(int fd, long size) throws UringException {
        check("ftruncate", SYS_FTRUNCATE, fd, size, 0, 0, 0, 0);
    }

    /** sync(2): every file system's dirty data and metadata to its device (waits for it). */
    public static void sync() {
        raw(SYS_SYNC, 0, 0, 0, 0, 0, 0);
    }

    public static void fsync(int fd) throws UringException {
        check("fsync", SYS_FSYNC, fd, 0, 0, 0, 0, 0);
    }

    public static long pread(int fd, MemorySegment buf, long offset) throws UringException {
        return check("pread", SYS_PREAD64, fd, buf.address(), buf.byteSize(), offset, 0, 0);
    }

    public static long pwrite(int fd, MemorySegment buf, long offset) throws UringException {
        return check("pwrite", SYS_PWRITE64, fd, buf.address(), buf.byteSize(), offset, 0, 0);
    }

    /** setsockopt(2) of an int option: 0, or minus errno. */
    public static int setsockoptInt(int fd, int level, int option, int value) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment v = arena.allocate(ValueLayout.JAVA_INT);
            v.set(ValueLayout.JAVA_INT, 0, value);
            return (int) raw(SYS_SETSOCKOPT, fd, level, option, v.address(), 4, 0);
        }
    }

    /** setsockopt(2) with the bytes of {@code value}: 0, or minus errno. */
    public static int setsockopt(int fd, int level, int option, MemorySegment value) {
        return (int) raw(SYS_SETSOCKOPT, fd, level, option, value.address(), value.byteSize(), 0);
    }

    /** Kernel TLS (linux/tls.h, TCP_ULP in linux/tcp.h). */
    public static final int TCP_ULP = 31, SOL_TLS = 282, TLS_TX = 1, TLS_RX = 2, TLS_RX_EXPECT_NO_PAD = 4,
            TLS_SET_RECORD_TYPE = 1, TLS_GET_RECORD_TYPE = 2;

    /**
     * recvmsg(2) of one buffer with room for control messages: the bytes received, or minus errno. The control
     * messages land in {@code control}; the msghdr's msg_controllen (what they filled) is returned in
     * {@code controlLen[0]}.
     */
    public static long recvmsg(int fd, MemorySegment buf, MemorySegment control, int flags, long[] controlLen) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment iov = arena.allocate(16, 8);
            iov.set(ValueLayout.JAVA_LONG, 0, buf.address());
            iov.set(ValueLayout.JAVA_LONG, 8, buf.byteSize());
            MemorySegment msg = arena.allocate(56, 8); // struct msghdr
            msg.set(ValueLayout.JAVA_LONG, 16, iov.address());
            msg.set(ValueLayout.JAVA_LONG, 24, 1);
            msg.set(ValueLayout.JAVA_LONG, 32, control.address());
            msg.set(ValueLayout.JAVA_LONG, 40, control.byteSize());
            long r = raw(SYS_RECVMSG, fd, msg.address(), flags, 0, 0, 0);
            controlLen[0] = msg.get(ValueLayout.JAVA_LONG, 40);
            return r;
        }
    }

    /** sendmsg(2) of {@code buf} with one control message (level, type, data): bytes sent, or minus errno. */
    public static long sendmsg(int fd, MemorySegment buf, int cmsgLevel, int cmsgType, byte[] cmsgData, int flags) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment iov = arena.allocate(16, 8);
            iov.set(ValueLayout.JAVA_LONG, 0, buf.address());
            iov.set(ValueLayout.JAVA_LONG, 8, buf.byteSize());
            long cmsgLen = 16 + cmsgData.length; // CMSG_LEN
            long space = (cmsgLen + 7) & ~7L; // CMSG_SPACE
            MemorySegment control = arena.allocate(space, 8);
            control.set(ValueLayout.JAVA_LONG, 0, cmsgLen);
            control.set(ValueLayout.JAVA_INT, 8, cmsgLevel);
            control.set(ValueLayout.JAVA_INT, 12, cmsgType);
            MemorySegment.copy(cmsgData, 0, control, ValueLayout.JAVA_BYTE, 16, cmsgData.length);
            MemorySegment msg = arena.allocate(56, 8);
            msg.set(ValueLayout.JAVA_LONG, 16, iov.address());
            msg.set(ValueLayout.JAVA_LONG, 24, 1);
            msg.set(ValueLayout.JAVA_LONG, 32, control.address());
            msg.set(ValueLayout.JAVA_LONG, 40, space);
            return raw(SYS_SENDMSG, fd, msg.address(), flags, 0, 0, 0);
        }
    }

    /** AF_VSOCK socket options (linux/vm_sockets.h): 64-bit sizes at level AF_VSOCK. */
    public static final int SO_VM_SOCKETS_BUFFER_SIZE = 0, SO_VM_SOCKETS_BUFFER_MAX_SIZE = 2;

    /** setsockopt(2) of a 64-bit option: 0, or minus errno. */
    public static int setsockoptLong(int fd, int level, int option, long value) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment v = arena.allocate(ValueLayout.JAVA_LONG);
            v.set(ValueLayout.JAVA_LONG, 0, value);
            return (int) raw(SYS_SETSOCKOPT, fd, level, option, v.address(), 8, 0);
        }
    }

    /** setsockopt(2) SO_LINGER {on, seconds}: 0, or minus errno. */
    public static int setLinger(int fd, boolean on, int seconds) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment v = arena.allocate(8, 4);
            v.set(ValueLayout.JAVA_INT, 0, on ? 1 : 0);
            v.set(ValueLayout.JAVA_INT, 4, seconds);
            return (int) raw(SYS_SETSOCKOPT, fd, SOL_SOCKET, SO_LINGER, v.address(), 8, 0);
        }
    }

    /** pread(2) of {@code len} bytes to {@code address}: bytes read, or minus errno. */
    public static long pread(int fd, long address, long len, long offset) {
        return raw(SYS_PREAD64, fd, address, len, offset, 0, 0);
    }

    /** pwrite(2) of {@code len} bytes at {@code address}: bytes written, or minus errno. */
    public static long pwrite(int fd, long address, long len, long offset) {
        return raw(SYS_PWRITE64, fd, address, len, offset, 0, 0);
    }

    /** Shared read/write mapping of {@code fd} at {@code offset}, or anonymous when fd is -1. */
    public static MemorySegment mmap(int fd, long offset, long size, boolean writable) throws UringException {
        int prot = PROT_READ | (writable ? PROT_WRITE : 0);
        int flags = fd < 0 ? MAP_PRIVATE | MAP_ANONYMOUS : MAP_SHARED | MAP_POPULATE;
        long addr = check("mmap", SYS_MMAP, 0, size, prot, flags, fd, offset);
        return MemorySegment.ofAddress(addr).reinterpret(size);
    }

    public static void munmap(MemorySegment segment) {
        raw(SYS_MUNMAP, segment.address(), segment.byteSize(), 0, 0, 0, 0);
    }

    public static long getpid() {
        return raw(SYS_GETPID, 0, 0, 0, 0, 0, 0);
    }

    /** Sends a signal; returns false when the process does not exist (ESRCH). */
    public static boolean kill(long pid, int signal) {
        return raw(SYS_KILL, pid, signal, 0, 0, 0, 0) == 0;
    }

    public static final int PR_SET_IO_FLUSHER = 57, PR_GET_IO_FLUSHER = 58, MCL_CURRENT = 1, MCL_FUTURE = 2,
            MCL_ONFAULT = 4;

    /** prctl(2) with one argument, for the calling thread; 0, or minus errno. */
    public static int prctl(int option, long arg) {
        return (int) raw(SYS_PRCTL, option, arg, 0, 0, 0, 0);
    }

    /**
     * execve(2): replaces this process (every thread of it) with {@code path} run with {@code argv} and
     * {@code env}. Returns only on failure, with minus errno.
     */
    public static int execve(String path, java.util.List<String> argv, java.util.List<String> env) {
        Arena arena = Arena.ofConfined();
        try {
            MemorySegment args = cStrings(arena, argv);
            MemorySegment envp = cStrings(arena, env);
            return (int) raw(SYS_EXECVE, arena.allocateFrom(path).address(), args.address(), envp.address(), 0, 0, 0);
        } finally {
            arena.close();
        }
    }

    /** A NULL-terminated array of C strings. */
    private static MemorySegment cStrings(Arena arena, java.util.List<String> strings) {
        MemorySegment array = arena.allocate(ValueLayout.ADDRESS, strings.size() + 1);
        for (int i = 0; i < strings.size(); i++) {
            array.setAtIndex(ValueLayout.ADDRESS, i, arena.allocateFrom(strings.get(i)));
        }
        array.setAtIndex(ValueLayout.ADDRESS, strings.size(), MemorySegment.NULL);
        return array;
    }

    /** mlockall(2); 0, or minus errno. */
    public static int mlockall(int flags) {
        return (int) raw(SYS_MLOCKALL, flags, 0, 0, 0, 0, 0);
    }

    /** umask(2): sets the file mode creation mask and returns the previous one. */
    public static int umask(int mask) {
        return (int) raw(SYS_UMASK, mask, 0, 0, 0, 0, 0);
    }

    /** A new non-blocking, close-on-exec stream socket of {@code family}: its descriptor, or minus errno. */
    public static int streamSocketNonBlocking(int family) {
        return (int) raw(SYS_SOCKET, family, 1 /* SOCK_STREAM */ | SOCK_CLOEXEC | O_NONBLOCK, 0, 0, 0, 0);
    }

    /** connect(2) to an encoded sockaddr (its size is the length): 0, or minus errno (EINPROGRESS when non-blocking). */
    public static int connect(int fd, MemorySegment sockaddr) {
        return (int) raw(SYS_CONNECT, fd, sockaddr.address(), sockaddr.byteSize(), 0, 0, 0);
    }

    /** getsockopt(2) SO_ERROR: the pending error of a non-blocking connect (0: connected), or minus errno. */
    public static int socketError(int fd) {
        return getsockoptInt(fd, SOL_SOCKET, 4 /* SO_ERROR */);
    }

    /** getsockopt(2) of an int option: its value, or minus errno (no option read here is negative). */
    public static int getsockoptInt(int fd, int level, int option) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment v = arena.allocate(ValueLayout.JAVA_INT);
            MemorySegment len = arena.allocate(ValueLayout.JAVA_INT);
            len.set(ValueLayout.JAVA_INT, 0, 4);
            long r = raw(SYS_GETSOCKOPT, fd, level, option, v.address(), len.address(), 0);
            return r < 0 ? (int) r : v.get(ValueLayout.JAVA_INT, 0);
        }
    }

    public static final short POLLIN = 1, POLLOUT = 4;

    /** poll(2) of one descriptor: its revents, 0 on timeout, or minus errno. */
    public static int poll(int fd, short events, int timeoutMillis) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment p = arena.allocate(8, 4);
            p.set(ValueLayout.JAVA_INT, 0, fd);
            p.set(ValueLayout.JAVA_SHORT, 4, events);
            long r = raw(SYS_POLL, p.address(), 1, timeoutMillis, 0, 0, 0);
            return r <= 0 ? (int) r : p.get(ValueLayout.JAVA_SHORT, 6);
        }
    }

    /** read(2) into {@code buf}: bytes read, 0 at end of stream, or minus errno. */
    public static long read(int fd, MemorySegment buf) {
        return raw(SYS_READ, fd, buf.address(), buf.byteSize(), 0, 0, 0);
    }

    /** write(2) of {@code buf}: bytes written, or minus errno. */
    public static long write(int fd, MemorySegment buf) {
        return raw(SYS_WRITE, fd, buf.address(), buf.byteSize(), 0, 0, 0);
    }

    /** send(2) of {@code len} bytes at {@code address} with {@code flags}: bytes sent, or minus errno. */
    public static long send(int fd, long address, long len, int flags) {
        return raw(SYS_SENDTO, fd, address, len, flags, 0, 0);
    }

    /** send(2) of {@code buf} with MSG_NOSIGNAL (a closed peer is EPIPE, not SIGPIPE): bytes sent, or minus errno. */
    public static long sendNoSignal(int fd, MemorySegment buf) {
        return raw(SYS_SENDTO, fd, buf.address(), buf.byteSize(), 0x4000 /* MSG_NOSIGNAL */, 0, 0);
    }

    /** A new AF_UNIX datagram socket, close-on-exec. */
    public static int unixDatagramSocket() throws UringException {
        return (int) check("socket(AF_UNIX, SOCK_DGRAM)", SYS_SOCKET, AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0, 0, 0, 0);
    }

    /** socketpair(2) of two connected AF_UNIX stream sockets, blocking and close-on-exec. */
    public static int[] unixStreamPair() throws UringException {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment fds = arena.allocate(ValueLayout.JAVA_INT, 2);
            check("socketpair(AF_UNIX, SOCK_STREAM)", SYS_SOCKETPAIR, AF_UNIX, 1 /* SOCK_STREAM */ | SOCK_CLOEXEC, 0,
                    fds.address(), 0, 0);
            return new int[] {fds.getAtIndex(ValueLayout.JAVA_INT, 0), fds.getAtIndex(ValueLayout.JAVA_INT, 1)};
        }
    }

    public static final int SHUT_RDWR = 2;

    /** shutdown(2): wakes any thread blocked reading or writing the socket. 0, or minus errno. */
    public static int shutdown(int fd, int how) {
        return (int) raw(SYS_SHUTDOWN, fd, how, 0, 0, 0, 0);
    }

    /** bind(2) to a unix address; a leading '@' names the abstract namespace (as in systemd's NOTIFY_SOCKET). */
    public static void bindUnix(int fd, String address) throws UringException {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment sa = sockaddrUn(arena, address);
            check("bind " + address, SYS_BIND, fd, sa.address(), sa.byteSize(), 0, 0, 0);
        }
    }

    /** sendto(2) of one datagram to a unix address ('@' = abstract namespace). */
    public static void sendToUnix(int fd, String address, byte[] message) throws UringException {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment sa = sockaddrUn(arena, address);
            MemorySegment buf = arena.allocate(Math.max(1, message.length));
            MemorySegment.copy(message, 0, buf, ValueLayout.JAVA_BYTE, 0, message.length);
            check("sendto " + address, SYS_SENDTO, fd, buf.address(), message.length, 0, sa.address(), sa.byteSize());
        }
    }

    /** recv(2) of one queued datagram into {@code buf} without waiting: its length, or minus errno (EAGAIN: none). */
    public static int receiveNow(int fd, byte[] buf) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment seg = arena.allocate(Math.max(1, buf.length));
            long r = raw(SYS_RECVFROM, fd, seg.address(), buf.length, MSG_DONTWAIT, 0, 0);
            if (r > 0) {
                MemorySegment.copy(seg, ValueLayout.JAVA_BYTE, 0, buf, 0, (int) Math.min(r, buf.length));
            }
            return (int) r;
        }
    }

    // The kernel takes the address length, not a terminating NUL, as the end of an abstract name
    // (unix_mkname_bsd in net/unix/af_unix.c); a path name gets its NUL counted, as sd_notify does.
    private static MemorySegment sockaddrUn(Arena arena, String address) throws UringException {
        boolean abstractName = address.startsWith("@");
        byte[] path = (abstractName ? address.substring(1) : address).getBytes(java.nio.charset.StandardCharsets.UTF_8);
        int length = 2 + (abstractName ? 1 + path.length : path.length + 1);
        if (address.isEmpty() || length > SOCKADDR_UN_SIZE) {
            throw new UringException("unix socket address '" + address + "'", Errno.EINVAL);
        }
        MemorySegment sa = arena.allocate(SOCKADDR_UN_SIZE);
        sa.set(ValueLayout.JAVA_SHORT, 0, (short) AF_UNIX);
        MemorySegment.copy(path, 0, sa, ValueLayout.JAVA_BYTE, abstractName ? 3 : 2, path.length);
        return sa.asSlice(0, length);
    }
}
