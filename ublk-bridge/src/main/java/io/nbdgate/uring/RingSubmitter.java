package io.nbdgate.uring;

import io.netty.channel.IoRegistration;
import io.netty.channel.uring.IoUringIoOps;

/**
 * The one place that builds SQEs for a handle registered on a Netty io_uring loop: named operations over
 * Netty's 13-argument {@link IoUringIoOps}, whose order is easy to get wrong (buf_index comes before
 * personality), plus bytes 56-63, which Netty never writes and which are always written here (0 unless
 * given): a stale value there is read by the kernel as ublksrv_io_cmd.addr or attr_type_mask. Loop thread only.
 */
public final class RingSubmitter {
    private final IoRegistration reg;
    private final NettyRing ring;

    public RingSubmitter(IoRegistration reg, NettyRing ring) {
        this.reg = reg;
        this.ring = ring;
    }

    public NettyRing ring() {
        return ring;
    }

    /**
     * Enqueues one SQE; arguments in SQE order (personality is always 0), {@code tail} goes to bytes 56-63.
     * Returns Netty's user_data of the operation (what ASYNC_CANCEL names).
     */
    public long submit(byte opcode, byte sqeFlags, short ioPrio, int fd, long off, long addr, int len, int opFlags,
                       short data, short bufIndex, int union5, long union6, long tail) {
        long id = reg.submit(new IoUringIoOps(opcode, sqeFlags, ioPrio, fd, off, addr, len, opFlags, data, bufIndex,
                (short) 0, union5, union6));
        ring.writeLastSqeTail(opcode, union6, tail);
        return id;
    }

    public long socket(int family, int type, short data) {
        return submit(IoUringAbi.OP_SOCKET, (byte) 0, (short) 0, family, type, 0, 0, 0, data, (short) 0, 0, 0, 0);
    }

    public long connect(int fd, long sockaddr, long sockaddrLen, short data) {
        return submit(IoUringAbi.OP_CONNECT, (byte) 0, (short) 0, fd, sockaddrLen, sockaddr, 0, 0, data, (short) 0, 0, 0, 0);
    }

    /** One-shot POLL_ADD: completes with the ready events of {@code events} (POLLERR and POLLHUP always count). */
    public long poll(int fd, short events, short data) {
        return submit(IoUringAbi.OP_POLL_ADD, (byte) 0, (short) 0, fd, 0, 0, 0, events & 0xffff, data, (short) 0, 0, 0,
                0);
    }

    /** SEND from memory, or from fixed buffer {@code bufIndex} when it is >= 0 ({@code addr} within it). */
    public long send(byte sqeFlags, int fd, long addr, int len, int msgFlags, int bufIndex, short data) {
        return submit(IoUringAbi.OP_SEND, sqeFlags, fixed(bufIndex), fd, 0, addr, len, msgFlags, data,
                (short) Math.max(0, bufIndex), 0, 0, 0);
    }

    /** SEND_ZC from fixed buffer {@code bufIndex}: a notification CQE follows once the pages are released. */
    public long sendZeroCopy(byte sqeFlags, int fd, long addr, int len, int msgFlags, int bufIndex, short data) {
        return submit(IoUringAbi.OP_SEND_ZC, sqeFlags, fixed(bufIndex), fd, 0, addr, len, msgFlags, data,
                (short) Math.max(0, bufIndex), 0, 0, 0);
    }

    /** RECV into memory, or into fixed buffer {@code bufIndex} when it is >= 0; {@code recvFlags}: POLL_FIRST. */
    public long recv(byte sqeFlags, short recvFlags, int fd, long addr, int len, int msgFlags, int bufIndex, short data) {
        return submit(IoUringAbi.OP_RECV, sqeFlags, (short) (recvFlags | fixed(bufIndex)), fd, 0, addr, len, msgFlags,
                data, (short) Math.max(0, bufIndex), 0, 0, 0);
    }

    public long readFixed(int fd, long fileOffset, long addr, int len, int bufIndex, short data) {
        return submit(IoUringAbi.OP_READ_FIXED, (byte) 0, (short) 0, fd, fileOffset, addr, len, 0, data,
                (short) bufIndex, 0, 0, 0);
    }

    /** setsockopt through the socket's uring_cmd (Linux 6.7+); {@code value} points at an int. */
    public long setsockopt(byte sqeFlags, int fd, int level, int option, long value, short data) {
        return submit(IoUringAbi.OP_URING_CMD, sqeFlags, (short) 0, fd, IoUringAbi.SOCKET_URING_OP_SETSOCKOPT,
                level & 0xffffffffL | (long) option << 32, 0, 0, data, (short) 0, 4, value, 0);
    }

    public long shutdown(int fd, int how, short data) {
        return submit(IoUringAbi.OP_SHUTDOWN, (byte) 0, (short) 0, fd, 0, 0, how, 0, data, (short) 0, 0, 0, 0);
    }

    public long close(int fd, short data) {
        return submit(IoUringAbi.OP_CLOSE, (byte) 0, (short) 0, fd, 0, 0, 0, 0, data, (short) 0, 0, 0, 0);
    }

    /** ASYNC_CANCEL of the operation whose Netty user_data is {@code target}. */
    public long cancel(long target, short data) {
        return submit(IoUringAbi.OP_ASYNC_CANCEL, (byte) 0, (short) 0, -1, 0, target, 0, 0, data, (short) 0, 0, 0, 0);
    }

    /** A 64-byte-SQE URING_CMD: {@code cmd} is sqe->cmd's first 8 bytes, {@code cmdTail} its second. */
    public long uringCmd(byte sqeFlags, int fd, int cmdOp, long addr, int opFlags, short data, short bufGroup,
                         long cmd, long cmdTail) {
        return submit(IoUringAbi.OP_URING_CMD, sqeFlags, (short) 0, fd, cmdOp & 0xffffffffL, addr, 0, opFlags, data,
                bufGroup, 0, cmd, cmdTail);
    }

    /** A read or write of a target on the queue's own ring (opcode from io_uring.h). */
    public long io(byte opcode, int fd, long off, long addr, int len, int opFlags, int bufIndex, short data) {
        return submit(opcode, (byte) 0, (short) 0, fd, off, addr, len, opFlags, data, (short) bufIndex, 0, 0, 0);
    }

    private static short fixed(int bufIndex) {
        return bufIndex >= 0 ? IoUringAbi.RECVSEND_FIXED_BUF : 0;
    }
}
