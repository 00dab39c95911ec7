package io.nbdgate.ublk;

import static java.lang.foreign.ValueLayout.JAVA_BYTE;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;
import static java.lang.foreign.ValueLayout.JAVA_SHORT;

import java.lang.foreign.MemoryLayout;
import java.lang.foreign.StructLayout;

/** include/uapi/linux/ublk_cmd.h: constants and struct layouts, nothing else. */
public final class UblkAbi {
    private UblkAbi() {
    }

    // ioctl number encoding (asm-generic/ioctl.h)
    private static final int IOC_WRITE = 1, IOC_READ = 2;

    static int ioc(int dir, int nr, long size) {
        return (dir << 30) | ((int) size << 16) | ('u' << 8) | nr;
    }

    static int ior(int nr, long size) { return ioc(IOC_READ, nr, size); }
    static int iowr(int nr, long size) { return ioc(IOC_READ | IOC_WRITE, nr, size); }

    /** struct ublksrv_ctrl_cmd, carried in the cmd area of a SQE128. */
    public static final StructLayout CTRL_CMD = MemoryLayout.structLayout(
            JAVA_INT.withName("dev_id"), JAVA_SHORT.withName("queue_id"), JAVA_SHORT.withName("len"),
            JAVA_LONG.withName("addr"), JAVA_LONG.withName("data"), JAVA_SHORT.withName("dev_path_len"),
            JAVA_SHORT.withName("pad"), JAVA_INT.withName("reserved"));
    static final long CC_DEV_ID = 0, CC_QUEUE_ID = 4, CC_LEN = 6, CC_ADDR = 8, CC_DATA = 16, CC_DEV_PATH_LEN = 24;

    /** struct ublksrv_ctrl_dev_info. */
    public static final StructLayout DEV_INFO = MemoryLayout.structLayout(
            JAVA_SHORT.withName("nr_hw_queues"), JAVA_SHORT.withName("queue_depth"), JAVA_SHORT.withName("state"),
            JAVA_SHORT.withName("pad0"), JAVA_INT.withName("max_io_buf_bytes"), JAVA_INT.withName("dev_id"),
            JAVA_INT.withName("ublksrv_pid"), JAVA_INT.withName("pad1"), JAVA_LONG.withName("flags"),
            JAVA_LONG.withName("ublksrv_flags"), JAVA_INT.withName("owner_uid"), JAVA_INT.withName("owner_gid"),
            JAVA_LONG.withName("reserved1"), JAVA_LONG.withName("reserved2"));
    static final long DI_NR_HW_QUEUES = 0, DI_QUEUE_DEPTH = 2, DI_STATE = 4, DI_MAX_IO_BUF_BYTES = 8,
            DI_DEV_ID = 12, DI_UBLKSRV_PID = 16, DI_FLAGS = 24, DI_UBLKSRV_FLAGS = 32, DI_OWNER_UID = 40,
            DI_OWNER_GID = 44;

    // control commands, ioctl-encoded
    public static final int U_CMD_GET_QUEUE_AFFINITY = ior(0x01, CTRL_CMD.byteSize()),
            U_CMD_GET_DEV_INFO = ior(0x02, CTRL_CMD.byteSize()),
            U_CMD_ADD_DEV = iowr(0x04, CTRL_CMD.byteSize()),
            U_CMD_DEL_DEV = iowr(0x05, CTRL_CMD.byteSize()),
            U_CMD_START_DEV = iowr(0x06, CTRL_CMD.byteSize()),
            U_CMD_STOP_DEV = iowr(0x07, CTRL_CMD.byteSize()),
            U_CMD_SET_PARAMS = iowr(0x08, CTRL_CMD.byteSize()),
            U_CMD_GET_PARAMS = ior(0x09, CTRL_CMD.byteSize()),
            U_CMD_START_USER_RECOVERY = iowr(0x10, CTRL_CMD.byteSize()),
            U_CMD_END_USER_RECOVERY = iowr(0x11, CTRL_CMD.byteSize()),
            U_CMD_GET_DEV_INFO2 = ior(0x12, CTRL_CMD.byteSize()),
            U_CMD_GET_FEATURES = ior(0x13, CTRL_CMD.byteSize()),
            U_CMD_DEL_DEV_ASYNC = ior(0x14, CTRL_CMD.byteSize()),
            U_CMD_UPDATE_SIZE = iowr(0x15, CTRL_CMD.byteSize()),
            U_CMD_QUIESCE_DEV = iowr(0x16, CTRL_CMD.byteSize()),
            U_CMD_TRY_STOP_DEV = iowr(0x17, CTRL_CMD.byteSize());

    /** struct ublksrv_io_cmd, at SQE offset 48 of an I/O command. */
    public static final StructLayout IO_CMD = MemoryLayout.structLayout(
            JAVA_SHORT.withName("q_id"), JAVA_SHORT.withName("tag"), JAVA_INT.withName("result"),
            JAVA_LONG.withName("addr"));
    static final long IC_Q_ID = 0, IC_TAG = 2, IC_RESULT = 4, IC_ADDR = 8;

    // I/O commands, ioctl-encoded
    public static final int U_IO_FETCH_REQ = iowr(0x20, IO_CMD.byteSize()),
            U_IO_COMMIT_AND_FETCH_REQ = iowr(0x21, IO_CMD.byteSize()),
            U_IO_NEED_GET_DATA = iowr(0x22, IO_CMD.byteSize()),
            U_IO_REGISTER_IO_BUF = iowr(0x23, IO_CMD.byteSize()),
            U_IO_UNREGISTER_IO_BUF = iowr(0x24, IO_CMD.byteSize());

    /**
     * UBLK_F_BATCH_IO commands (Linux 7.0+). Their SQE cmd area is a struct ublk_batch_io (16 bytes:
     * q_id u16, flags u16, nr_elem u16, elem_bytes u8, two reserved fields) and sqe->addr points to the
     * elements: {tag u16, buf_index u16, result s32} plus buf_addr u64 with BATCH_F_HAS_BUF_ADDR.
     * FETCH is multishot and writes u16 tags into a provided buffer.
     */
    public static final int U_IO_PREP_IO_CMDS = iowr(0x25, 16), U_IO_COMMIT_IO_CMDS = iowr(0x26, 16),
            U_IO_FETCH_IO_CMDS = iowr(0x27, 16);
    public static final int BATCH_F_HAS_BUF_ADDR = 1 << 1;

    /** Bytes 48-55 of a batch command's SQE: q_id, flags, nr_elem, elem_bytes (the rest of the header is 0). */
    public static long batchHeader(int qid, int flags, int nrElem, int elemBytes) {
        return (qid & 0xffffL) | (flags & 0xffffL) << 16 | (nrElem & 0xffffL) << 32 | (elemBytes & 0xffL) << 48;
    }

    public static final int IO_RES_OK = 0, IO_RES_NEED_GET_DATA = 1, IO_RES_ABORT = -19 /* -ENODEV */;

    public static final long UBLKSRV_IO_BUF_OFFSET = 0x80000000L;
    public static final int UBLK_MAX_QUEUE_DEPTH = 4096;
    public static final int IO_BUF_BITS = 25, TAG_OFF = IO_BUF_BITS, TAG_BITS = 16, QID_OFF = TAG_OFF + TAG_BITS;

    /** pread/pwrite offset on /dev/ublkcN of a request's buffer in USER_COPY mode. */
    public static long userCopyOffset(int qid, int tag) {
        return UBLKSRV_IO_BUF_OFFSET + (((long) qid << QID_OFF) | ((long) tag << TAG_OFF));
    }

    // feature flags (ublksrv_ctrl_dev_info.flags and GET_FEATURES)
    public static final long F_SUPPORT_ZERO_COPY = 1L, F_URING_CMD_COMP_IN_TASK = 1L << 1,
            F_NEED_GET_DATA = 1L << 2, F_USER_RECOVERY = 1L << 3, F_USER_RECOVERY_REISSUE = 1L << 4,
            F_UNPRIVILEGED_DEV = 1L << 5, F_CMD_IOCTL_ENCODE = 1L << 6, F_USER_COPY = 1L << 7,
            F_ZONED = 1L << 8, F_USER_RECOVERY_FAIL_IO = 1L << 9, F_UPDATE_SIZE = 1L << 10,
            F_AUTO_BUF_REG = 1L << 11, F_QUIESCE = 1L << 12, F_PER_IO_DAEMON = 1L << 13,
            F_BUF_REG_OFF_DAEMON = 1L << 14, F_BATCH_IO = 1L << 15, F_INTEGRITY = 1L << 16,
            F_SAFE_STOP_DEV = 1L << 17, F_NO_AUTO_PART_SCAN = 1L << 18, F_SHMEM_ZC = 1L << 19;

    static final String[] FEATURE_NAMES = {"SUPPORT_ZERO_COPY", "URING_CMD_COMP_IN_TASK", "NEED_GET_DATA",
        "USER_RECOVERY", "USER_RECOVERY_REISSUE", "UNPRIVILEGED_DEV", "CMD_IOCTL_ENCODE", "USER_COPY", "ZONED",
        "USER_RECOVERY_FAIL_IO", "UPDATE_SIZE", "AUTO_BUF_REG", "QUIESCE", "PER_IO_DAEMON", "BUF_REG_OFF_DAEMON",
        "BATCH_IO", "INTEGRITY", "SAFE_STOP_DEV", "NO_AUTO_PART_SCAN", "SHMEM_ZC"};

    // device state
    public static final int S_DEV_DEAD = 0, S_DEV_LIVE = 1, S_DEV_QUIESCED = 2, S_DEV_FAIL_IO = 3;

    // I/O ops and flags (ublksrv_io_desc.op_flags)
    public static final int IO_OP_READ = 0, IO_OP_WRITE = 1, IO_OP_FLUSH = 2, IO_OP_DISCARD = 3,
            IO_OP_WRITE_SAME = 4, IO_OP_WRITE_ZEROES = 5, IO_OP_ZONE_OPEN = 10, IO_OP_ZONE_CLOSE = 11,
            IO_OP_ZONE_FINISH = 12, IO_OP_ZONE_APPEND = 13, IO_OP_ZONE_RESET_ALL = 14, IO_OP_ZONE_RESET = 15,
            IO_OP_REPORT_ZONES = 18;
    public static final int IO_F_FAILFAST_DEV = 1 << 8, IO_F_FAILFAST_TRANSPORT = 1 << 9,
            IO_F_FAILFAST_DRIVER = 1 << 10, IO_F_META = 1 << 11, IO_F_FUA = 1 << 13, IO_F_NOUNMAP = 1 << 15,
            IO_F_SWAP = 1 << 16, IO_F_NEED_REG_BUF = 1 << 17, IO_F_INTEGRITY = 1 << 18, IO_F_SHMEM_ZC = 1 << 19;

    /** struct ublksrv_io_desc, one per tag in the mmap of /dev/ublkcN. */
    public static final StructLayout IO_DESC = MemoryLayout.structLayout(
            JAVA_INT.withName("op_flags"), JAVA_INT.withName("nr_sectors"), JAVA_LONG.withName("start_sector"),
            JAVA_LONG.withName("addr"));
    static final long ID_OP_FLAGS = 0, ID_NR_SECTORS = 4, ID_START_SECTOR = 8, ID_ADDR = 16;

    /** AUTO_BUF_REG data in sqe->addr: index bits 0-15, flags bits 16-23. */
    public static final int AUTO_BUF_REG_FALLBACK = 1;

    public static long autoBufReg(int index, int flags) {
        return (index & 0xffffL) | ((long) (flags & 0xff) << 16);
    }

    // ublk_params
    public static final int ATTR_READ_ONLY = 1, ATTR_ROTATIONAL = 1 << 1, ATTR_VOLATILE_CACHE = 1 << 2,
            ATTR_FUA = 1 << 3;
    public static final int PARAM_TYPE_BASIC = 1, PARAM_TYPE_DISCARD = 1 << 1, PARAM_TYPE_DEVT = 1 << 2,
            PARAM_TYPE_ZONED = 1 << 3, PARAM_TYPE_DMA_ALIGN = 1 << 4, PARAM_TYPE_SEGMENT = 1 << 5,
            PARAM_TYPE_INTEGRITY = 1 << 6;
    public static final int MIN_SEGMENT_SIZE = 4096;

    public static final StructLayout PARAM_BASIC = MemoryLayout.structLayout(
            JAVA_INT.withName("attrs"), JAVA_BYTE.withName("logical_bs_shift"),
            JAVA_BYTE.withName("physical_bs_shift"), JAVA_BYTE.withName("io_opt_shift"),
            JAVA_BYTE.withName("io_min_shift"), JAVA_INT.withName("max_sectors"),
            JAVA_INT.withName("chunk_sectors"), JAVA_LONG.withName("dev_sectors"),
            JAVA_LONG.withName("virt_boundary_mask"));

    public static final StructLayout PARAM_DISCARD = MemoryLayout.structLayout(
            JAVA_INT.withName("discard_alignment"), JAVA_INT.withName("discard_granularity"),
            JAVA_INT.withName("max_discard_sectors"), JAVA_INT.withName("max_write_zeroes_sectors"),
            JAVA_SHORT.withName("max_discard_segments"), JAVA_SHORT.withName("reserved0"));

    public static final StructLayout PARAM_DEVT = MemoryLayout.structLayout(
            JAVA_INT.withName("char_major"), JAVA_INT.withName("char_minor"), JAVA_INT.withName("disk_major"),
            JAVA_INT.withName("disk_minor"));

    public static final StructLayout PARAM_ZONED = MemoryLayout.structLayout(
            JAVA_INT.withName("max_open_zones"), JAVA_INT.withName("max_active_zones"),
            JAVA_INT.withName("max_zone_append_sectors"),
            MemoryLayout.sequenceLayout(20, JAVA_BYTE).withName("reserved"));

    public static final StructLayout PARAM_DMA_ALIGN = MemoryLayout.structLayout(
            JAVA_INT.withName("alignment"), MemoryLayout.sequenceLayout(4, JAVA_BYTE).withName("pad"));

    public static final StructLayout PARAM_SEGMENT = MemoryLayout.structLayout(
            JAVA_LONG.withName("seg_boundary_mask"), JAVA_INT.withName("max_segment_size"),
            JAVA_SHORT.withName("max_segments"), MemoryLayout.sequenceLayout(2, JAVA_BYTE).withName("pad"));

    public static final StructLayout PARAM_INTEGRITY = MemoryLayout.structLayout(
            JAVA_INT.withName("flags"), JAVA_SHORT.withName("max_integrity_segments"),
            JAVA_BYTE.withName("interval_exp"), JAVA_BYTE.withName("metadata_size"), JAVA_BYTE.withName("pi_offset"),
            JAVA_BYTE.withName("csum_type"), JAVA_BYTE.withName("tag_size"),
            MemoryLayout.sequenceLayout(5, JAVA_BYTE).withName("pad"));

    /** struct ublk_params; the zoned/dma gap before seg is the compiler's 8-byte alignment padding. */
    public static final StructLayout PARAMS = MemoryLayout.structLayout(
            JAVA_INT.withName("len"), JAVA_INT.withName("types"),
            PARAM_BASIC.withName("basic"), PARAM_DISCARD.withName("discard"), PARAM_DEVT.withName("devt"),
            PARAM_ZONED.withName("zoned"), PARAM_DMA_ALIGN.withName("dma"),
            MemoryLayout.paddingLayout(4),
            PARAM_SEGMENT.withName("seg"), PARAM_INTEGRITY.withName("integrity"));

    static final long P_LEN = 0, P_TYPES = 4, P_BASIC = 8, P_DISCARD = 40, P_DEVT = 60, P_ZONED = 76,
            P_DMA = 108, P_SEG = 120, P_INTEGRITY = 136;
}
