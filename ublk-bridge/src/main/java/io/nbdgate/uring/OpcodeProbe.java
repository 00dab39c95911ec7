package io.nbdgate.uring;

import static java.lang.foreign.ValueLayout.JAVA_BYTE;
import static java.lang.foreign.ValueLayout.JAVA_SHORT;

import java.lang.foreign.MemorySegment;
import java.util.BitSet;

/** Which io_uring opcodes this kernel supports (IORING_REGISTER_PROBE). */
public final class OpcodeProbe {
    private final int lastOp;
    private final BitSet supported;

    private OpcodeProbe(int lastOp, BitSet supported) {
        this.lastOp = lastOp;
        this.supported = supported;
    }

    static OpcodeProbe parse(MemorySegment p) {
        int lastOp = Byte.toUnsignedInt(p.get(JAVA_BYTE, 0));
        int opsLen = Byte.toUnsignedInt(p.get(JAVA_BYTE, 1));
        BitSet bits = new BitSet();
        long base = IoUringAbi.PROBE.byteSize();
        for (int i = 0; i < opsLen; i++) {
            long op = base + i * IoUringAbi.PROBE_OP.byteSize();
            int code = Byte.toUnsignedInt(p.get(JAVA_BYTE, op));
            short flags = p.get(JAVA_SHORT, op + 2);
            if ((flags & IoUringAbi.IO_URING_OP_SUPPORTED) != 0) {
                bits.set(code);
            }
        }
        return new OpcodeProbe(lastOp, bits);
    }

    public int lastOp() {
        return lastOp;
    }

    public boolean supports(int opcode) {
        return supported.get(opcode);
    }

    @Override
    public String toString() {
        return "OpcodeProbe[lastOp=" + lastOp + ", supported=" + supported + "]";
    }
}
