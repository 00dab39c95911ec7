package io.nbdgate.gateway.link;

import io.nbdgate.protocol.wire.ReplyReassembler;
import io.nbdgate.uring.Errno;
import io.nbdgate.uring.IoUringAbi;
import io.nbdgate.uring.LinuxCalls;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteBuffer;

/**
 * Puts a READ reply's data where it belongs: staged from rx (it arrived with the headers) by a copy into place,
 * received straight into the request's buffer, or zeroes for a hole. For fixed buffers every copy is the
 * kernel's: pwrite through ublk user copy, RECV with FIXED_BUF, READ_FIXED from /dev/zero. Java never touches
 * a data byte there.
 */
final class DataLanding {
    /**
     * Data receives of at least this many bytes wait for all of their bytes (SO_RCVLOWAT): the loop is woken once
     * per receive, not once per arriving segment.
     */
    static final int LOW_WATER_MIN = 64 << 10;

    /** All of this process's memory, to copy staged data to a request's address without a segment per copy. */
    private static final MemorySegment MEMORY = MemorySegment.NULL.reinterpret(Long.MAX_VALUE);

    private final Link link;
    private final ReplyPipeline replies;
    private final MemorySegment lowWaterValue;
    boolean dataInFlight;
    private boolean lowWaterWanted = true;
    private int rcvLowat = 1;
    /** The large data receive in flight, or the last one, was a first try without the mark. */
    private boolean triedWithoutMark;
    /** Bytes the data receive in flight asked for: all of them means the range is in. */
    private int dataAsked;
    private long stagedBytes;
    private long lowWaterReceives;

    DataLanding(Link link, ReplyPipeline replies) {
        this.link = link;
        this.replies = replies;
        this.lowWaterValue = java.lang.foreign.Arena.ofAuto().allocate(ValueLayout.JAVA_INT);
    }

    long stagedBytes() {
        return stagedBytes;
    }

    long lowWaterReceives() {
        return lowWaterReceives;
    }

    void useLowWater(boolean on) {
        lowWaterWanted = on;
    }

    private ReplyReassembler<Request> reassembler() {
        return replies.reassembler;
    }

    /**
     * Reply data that arrived in rx with its header: copies it into the request's buffer, in memory directly,
     * into a fixed buffer's pages with a pwrite through ublk user copy. False if the link ended.
     */
    boolean stage() {
        ByteBuffer rx = link.rx;
        Request r = reassembler().dataAttachment();
        if (!replies.canStage(r)) {
            // The hold rule keeps such a READ's reply out of rx, so this is a bug, not something a server causes.
            link.fail("internal error: " + rx.remaining() + " bytes of reply data were received as header bytes");
            return false;
        }
        long off = reassembler().dataOffset();
        int n = (int) Math.min(rx.remaining(), reassembler().dataLength());
        stagedBytes += n;
        DataPathStats.staged(n);
        RequestBuffer b = r.buffer();
        if (!b.isFixed()) {
            MemorySegment.copy(link.rxSeg, rx.position(), MEMORY, b.address() + off, n);
            rx.position(rx.position() + n);
            reassembler().dataReceived(n);
            DataPathStats.moved(false, n);
            return true;
        }
        // A pwrite on the loop thread, not a ring WRITE: the kernel's copy of a few KiB never blocks, and the
        // request can then complete in this pass, without a CQE and another dispatch of its own.
        long w = LinuxCalls.pwrite(b.userCopyFd(), link.rxSeg.address() + rx.position(), n, b.userCopyOffset() + off);
        if (w != n) {
            link.fail("staging reply data into the request's pages failed: "
                    + (w < 0 ? Errno.describe((int) -w) : "wrote " + w + " of " + n + " bytes"));
            return false;
        }
        rx.position(rx.position() + n);
        reassembler().dataReceived(n);
        return true;
    }

    /**
     * Receives reply data straight into the request's buffer. When this receive takes the rest of the range,
     * the receive of the next header is linked behind it: the kernel runs it as soon as the data is in.
     */
    void receive() {
        Request r = reassembler().dataAttachment();
        long off = reassembler().dataOffset();
        long remaining = reassembler().dataLength();
        int len = (int) Math.min(remaining, 1 << 30);
        if (link.tls != null) {
            // Kernel TLS: one plain receive at a time (nothing linked behind, no low-water mark), so that it can
            // be posted again after a control record.
            receiveData(r.buffer(), off, len, (byte) 0, (short) 0, Link.MSG_WAITALL, r.tag());
            return;
        }
        if (link.socketCommands && lowWaterWanted && len >= LOW_WATER_MIN) {
            receiveWhole(r, off, len);
            return;
        }
        // The next header's receive is linked behind only if another reply is coming: behind a lone READ's data
        // nothing is linked, and the idle receive that the pipeline posts once the data is in may batch.
        boolean linkAhead = len == remaining && reassembler().inFlight() > 1;
        // The receive linked behind may batch if no other READ needs its data received directly: a linked
        // receive cannot be cancelled, so an unstageable READ waits for it, and the other reply ends it.
        boolean batchNext = replies.directReads - (r.directRead ? 1 : 0) == 0;
        int aheadLen = batchNext ? ReplyPipeline.HEADER_BATCH_MAX : reassembler().boundaryReadAhead();
        if (linkAhead && !replies.makeRoom(aheadLen)) {
            linkAhead = false;
        }
        if (linkAhead) {
            aheadLen = Math.min(aheadLen, link.rx.capacity() - link.rx.limit());
            link.ring.reserveSq(2);
        }
        receiveData(r.buffer(), off, len, linkAhead ? IoUringAbi.IOSQE_IO_LINK : (byte) 0, (short) 0,
                Link.MSG_WAITALL, r.tag());
        if (linkAhead) {
            long id = replies.receiveIntoRx((byte) 0, aheadLen, 0);
            replies.rxInFlight = true;
            replies.aheadLinked = true;
            if (batchNext) {
                replies.rxBatching = true;
                replies.rxUserData = id;
                replies.rxCancelSent = false;
            }
        }
    }

    /**
     * A large data receive that wakes the loop once. First it takes what has arrived (no wait, no mark): when the
     * data came with its header, as it mostly does, that is all of it, for no system call. What is still missing
     * is received with SO_RCVLOWAT set to exactly those bytes (they are on their way: the reply header announced
     * them), polling first. Never more than what is coming, the mark cannot stall the stream; a short receive
     * completes and the next one asks for what is left. Not MSG_WAITALL, and nothing linked behind: io_uring's own
     * retry of a short MSG_WAITALL receive would keep the old, now too high, mark.
     */
    private void receiveWhole(Request r, long off, int len) {
        RequestBuffer b = r.buffer();
        if (!triedWithoutMark) {
            triedWithoutMark = true;
            receiveData(b, off, len, (byte) 0, (short) 0, 0, r.tag());
            return;
        }
        if (rcvLowat != len && !setRcvLowat(len)) {
            return;
        }
        receiveData(b, off, len, (byte) 0, IoUringAbi.RECVSEND_POLL_FIRST, 0, r.tag());
        lowWaterReceives++;
    }

    private void receiveData(RequestBuffer b, long off, int len, byte sqeFlags, short recvFlags, int msgFlags,
                             int tag) {
        link.recv(sqeFlags, recvFlags, b.address() + off, len, msgFlags, b.fixedIndex(),
                OpKind.data(OpKind.RX_DATA, tag));
        dataAsked = len;
        dataInFlight = true;
    }

    /**
     * A setsockopt(2) on the loop thread, not a ring operation: it never blocks, and its completion would only
     * return the loop to its wait, twice per large READ. Done before the receive it serves is even queued.
     */
    private boolean setRcvLowat(int value) {
        lowWaterValue.set(ValueLayout.JAVA_INT, 0, value);
        long res = LinuxCalls.setsockopt(link.fd, LinuxCalls.SOL_SOCKET, LinuxCalls.SO_RCVLOWAT, lowWaterValue);
        if (res < 0) {
            link.fail("setting SO_RCVLOWAT failed: " + Errno.describe((int) -res));
            return false;
        }
        rcvLowat = value;
        return true;
    }

    void onData(int tag, int res) {
        dataInFlight = false;
        if (link.state() != LinkState.READY) {
            return;
        }
        if (res <= 0) {
            link.fail(res == 0 ? "the server closed the connection in a reply" : "receiving reply data into "
                    + link.requests[tag].buffer() + " failed: " + Errno.describe(-res));
            return;
        }
        DataPathStats.moved(link.requests[tag].buffer().isFixed(), res);
        reassembler().dataReceived(res);
        if (res == dataAsked) {
            triedWithoutMark = false; // the range is in: the next one starts with a try again
        }
        if (rcvLowat != 1 && !setRcvLowat(1)) {
            // Before any other receive: header bytes must wake the loop from the first byte. Lowering the mark
            // re-checks readiness (tcp_set_rcvlowat), so even a receive armed before it cannot stall.
            return;
        }
        replies.pump();
    }

    /** A hole in a read reply: zeroes into the destination. True if an operation is now outstanding. */
    boolean zeroRange() {
        Request r = reassembler().dataAttachment();
        long off = reassembler().dataOffset();
        long len = reassembler().dataLength();
        RequestBuffer b = r.buffer();
        if (b.isFixed()) {
            // The request's pages are not in our address space: read /dev/zero into the fixed buffer.
            link.count(link.sqes.readFixed(link.options.zeroFd(), 0, b.address() + off, (int) len, b.fixedIndex(),
                    OpKind.data(OpKind.RX_ZEROES, r.tag())));
            return true;
        }
        MemorySegment.ofAddress(b.address() + off).reinterpret(len).fill((byte) 0);
        return false;
    }

    void onZeroes(int res) {
        if (link.state() != LinkState.READY) {
            return;
        }
        if (res < 0) {
            link.fail("zero-filling a hole failed: " + Errno.describe(-res));
        } else if (res < reassembler().dataLength()) {
            link.fail("zero-filling a hole was short: " + res);
        } else {
            replies.pump();
        }
    }
}
