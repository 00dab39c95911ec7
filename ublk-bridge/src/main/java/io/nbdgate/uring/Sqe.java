package io.nbdgate.uring;

import static io.nbdgate.uring.IoUringAbi.*;
import static java.lang.foreign.ValueLayout.JAVA_BYTE;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;
import static java.lang.foreign.ValueLayout.JAVA_SHORT;

import java.lang.foreign.MemorySegment;

/**
 * One submission queue entry, handed out zeroed by {@link IoUring#nextSqe()}. The ring keeps one
 * instance per slot, so preparing an operation allocates nothing; do not keep it after submit.
 */
public final class Sqe {
    private final MemorySegment slot;
    private final MemorySegment cmd;

    Sqe(MemorySegment slot) {
        this.slot = slot;
        this.cmd = slot.asSlice(SQE_CMD);
    }

    void clear() {
        slot.fill((byte) 0);
    }

    public Sqe opcode(byte op) { slot.set(JAVA_BYTE, SQE_OPCODE, op); return this; }
    public Sqe flags(byte f) { slot.set(JAVA_BYTE, SQE_FLAGS, f); return this; }
    public Sqe fd(int fd) { slot.set(JAVA_INT, SQE_FD, fd); return this; }
    public Sqe off(long off) { slot.set(JAVA_LONG, SQE_OFF, off); return this; }
    /** URING_CMD command opcode; shares the off field. */
    public Sqe cmdOp(int op) { slot.set(JAVA_INT, SQE_OFF, op); return this; }
    public Sqe addr(long addr) { slot.set(JAVA_LONG, SQE_ADDR, addr); return this; }
    public Sqe len(int len) { slot.set(JAVA_INT, SQE_LEN, len); return this; }
    public Sqe opFlags(int f) { slot.set(JAVA_INT, SQE_OP_FLAGS, f); return this; }
    public Sqe userData(long d) { slot.set(JAVA_LONG, SQE_USER_DATA, d); return this; }
    public Sqe bufIndex(int i) { slot.set(JAVA_SHORT, SQE_BUF_INDEX, (short) i); return this; }

    /** The command payload of a URING_CMD: 16 bytes in a 64-byte SQE, 80 in a SQE128 one. */
    public MemorySegment cmd() {
        return cmd;
    }

    public Sqe prepRw(byte op, int fd, long addr, int len, long offset, long userData) {
        return opcode(op).fd(fd).addr(addr).len(len).off(offset).userData(userData);
    }
}
