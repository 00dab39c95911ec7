package io.nbdgate.gateway.link;

/**
 * Where a request's data lives: the pages ublk registered at a fixed-buffer index (zero copy; readable and
 * writable by the kernel only, optionally through ublk user copy at an fd and offset), memory at an address
 * (user-copy and copy modes, tests), or nowhere (commands without data). One instance per tag, reused.
 */
public final class RequestBuffer {
    private int fixedIndex = -1;
    private long address;
    private int userCopyFd = -1;
    private long userCopyOffset;

    /** No data (FLUSH, TRIM, WRITE_ZEROES). */
    public RequestBuffer none() {
        return set(-1, 0, -1, 0);
    }

    /** Memory at {@code address}, the request's first byte. */
    public RequestBuffer memory(long address) {
        return set(-1, address, -1, 0);
    }

    /**
     * Fixed buffer {@code index} (addresses within it start at 0); {@code userCopyFd} >= 0 when the kernel can
     * also copy into its pages through ublk user copy at {@code userCopyOffset}, which lets small replies be staged.
     */
    public RequestBuffer fixed(int index, int userCopyFd, long userCopyOffset) {
        return set(index, 0, userCopyFd, userCopyOffset);
    }

    /**
     * Memory this process registered at fixed-buffer {@code index}: the kernel moves its bytes as it does a ublk
     * request's pages, but SQEs name them by their {@code address}.
     */
    public RequestBuffer registered(int index, long address) {
        return set(index, address, -1, 0);
    }

    private RequestBuffer set(int index, long address, int fd, long fdOffset) {
        this.fixedIndex = index;
        this.address = address;
        this.userCopyFd = fd;
        this.userCopyOffset = fdOffset;
        return this;
    }

    public boolean isFixed() {
        return fixedIndex >= 0;
    }

    /** The fixed-buffer index, -1 for memory. */
    public int fixedIndex() {
        return fixedIndex;
    }

    /** Address of the first byte: within a ublk fixed buffer (0), or in memory (registered or not). */
    public long address() {
        return address;
    }

    /** Whether reply data that arrived elsewhere can be copied into place (memory, or a fixed buffer with user copy). */
    public boolean copyable() {
        return fixedIndex < 0 || userCopyFd >= 0;
    }

    int userCopyFd() {
        return userCopyFd;
    }

    long userCopyOffset() {
        return userCopyOffset;
    }

    @Override
    public String toString() {
        return fixedIndex >= 0 ? "fixed buffer " + fixedIndex : "memory";
    }
}
