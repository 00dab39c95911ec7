package io.nbdgate.ublk;

import java.lang.foreign.MemorySegment;

/**
 * One block request as a target sees it; one instance per tag, reused (no allocation per request).
 * Offsets and lengths are bytes. Where the data lives depends on the buffer mode: a fixed buffer
 * at {@link #bufferIndex()} (zero-copy) or the memory segment {@link #buffer()} (copy, user-copy).
 */
public final class IoRequest {
    private final QueueEngine engine;
    private final int tag;
    private final MemorySegment tagBuffer;
    private int opFlags;
    private long offset;
    private int length;
    /** Free for the target: e.g. bytes done so far of a request split into several operations. */
    public long progress;

    IoRequest(QueueEngine engine, int tag, MemorySegment tagBuffer) {
        this.engine = engine;
        this.tag = tag;
        this.tagBuffer = tagBuffer;
    }

    void load(int opFlags, long startSector, int nrSectors) {
        this.opFlags = opFlags;
        // A FLUSH has no range; the kernel may hand it start_sector -1, which no backend should see.
        boolean flush = (opFlags & 0xff) == UblkAbi.IO_OP_FLUSH;
        this.offset = flush ? 0 : startSector << 9;
        this.length = flush ? 0 : nrSectors << 9;
        this.progress = 0;
    }

    public int tag() { return tag; }
    public int queue() { return engine.qid; }
    /** UBLK_IO_OP_* */
    public int op() { return opFlags & 0xff; }
    /** UBLK_IO_F_* bits, e.g. FUA or NOUNMAP. */
    public int flags() { return opFlags & ~0xff; }
    public long offset() { return offset; }
    public int length() { return length; }
    public BufferMode mode() { return engine.mode; }

    /** Index of the request's pages in the ring's fixed-buffer table (zero-copy only). */
    public int bufferIndex() {
        if (engine.mode != BufferMode.ZERO_COPY) {
            throw new IllegalStateException("no fixed buffer in " + engine.mode.label() + " mode");
        }
        return engine.bufferBase + tag;
    }

    /** The request's data in server memory (copy and user-copy modes), {@link #length()} bytes used. */
    public MemorySegment buffer() {
        if (tagBuffer == null) {
            throw new IllegalStateException("zero-copy: the data never enters Java memory");
        }
        // DISCARD / WRITE_ZEROES lengths can exceed the buffer; they carry no data.
        return tagBuffer.asSlice(0, Math.min(length, tagBuffer.byteSize()));
    }

    /**
     * True when the request's pages can be written (and read) through {@link #charFd()} at
     * {@link #userCopyOffset()} + position: user-copy mode, and zero-copy devices the kernel gave USER_COPY too.
     */
    public boolean userCopy() {
        return engine.userCopy;
    }

    /** /dev/ublkcN of the request's device, for user copy. */
    public int charFd() {
        return engine.charFd;
    }

    /** File offset of the request's first byte on {@link #charFd()} (UBLKSRV_IO_BUF_OFFSET + queue and tag). */
    public long userCopyOffset() {
        return UblkAbi.userCopyOffset(engine.qid, tag);
    }

    /** Address of {@link #buffer()} without creating a segment (copy and user-copy modes). */
    public long bufferAddress() {
        if (tagBuffer == null) {
            throw new IllegalStateException("zero-copy: the data never enters Java memory");
        }
        return tagBuffer.address();
    }

    /**
     * Submits one io_uring operation on the queue's own ring on behalf of this request; its result
     * comes back through {@link Target#onIo}. Fields follow struct io_uring_sqe.
     */
    public void submit(byte opcode, int fd, long off, long addr, int len, int opFlags, int bufIndex) {
        engine.submitTargetIo(tag, opcode, fd, off, addr, len, opFlags, bufIndex);
    }

    /** Finishes the request: bytes done, or a negative errno. */
    public void complete(int result) {
        engine.complete(this, result);
    }
}
