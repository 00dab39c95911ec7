package io.nbdgate.ublk;

import static io.nbdgate.ublk.UblkAbi.*;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;
import static java.lang.foreign.ValueLayout.JAVA_SHORT;

import java.lang.foreign.MemorySegment;

/** struct ublksrv_ctrl_dev_info as the kernel reports it. */
public record DeviceInfo(int devId, int nrHwQueues, int queueDepth, int state, int maxIoBufBytes, int ublksrvPid,
        long flags, int ownerUid, int ownerGid) {

    static DeviceInfo read(MemorySegment s) {
        return new DeviceInfo(s.get(JAVA_INT, DI_DEV_ID), Short.toUnsignedInt(s.get(JAVA_SHORT, DI_NR_HW_QUEUES)),
                Short.toUnsignedInt(s.get(JAVA_SHORT, DI_QUEUE_DEPTH)), Short.toUnsignedInt(s.get(JAVA_SHORT, DI_STATE)),
                s.get(JAVA_INT, DI_MAX_IO_BUF_BYTES), s.get(JAVA_INT, DI_UBLKSRV_PID), s.get(JAVA_LONG, DI_FLAGS),
                s.get(JAVA_INT, DI_OWNER_UID), s.get(JAVA_INT, DI_OWNER_GID));
    }

    void write(MemorySegment s) {
        s.set(JAVA_SHORT, DI_NR_HW_QUEUES, (short) nrHwQueues);
        s.set(JAVA_SHORT, DI_QUEUE_DEPTH, (short) queueDepth);
        s.set(JAVA_INT, DI_MAX_IO_BUF_BYTES, maxIoBufBytes);
        s.set(JAVA_INT, DI_DEV_ID, devId);
        s.set(JAVA_INT, DI_UBLKSRV_PID, ublksrvPid);
        s.set(JAVA_LONG, DI_FLAGS, flags);
    }

    public String stateName() {
        return switch (state) {
            case S_DEV_DEAD -> "DEAD";
            case S_DEV_LIVE -> "LIVE";
            case S_DEV_QUIESCED -> "QUIESCED";
            case S_DEV_FAIL_IO -> "FAIL_IO";
            default -> "state" + state;
        };
    }

    public boolean has(long feature) {
        return (flags & feature) != 0;
    }
}
